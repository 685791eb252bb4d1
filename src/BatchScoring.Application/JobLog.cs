using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// Log messages of job scoring (chunk scorer, job finisher, dispatch recovery, model cache), source-generated: the chunk
/// scorer's run once per chunk on every worker. Event ids 3000–3099 belong to jobs.
/// </summary>
internal static partial class JobLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Warning, Message = "Job {JobId} chunk {Chunk}: transient error, retrying in place: {Error}")]
    public static partial void ChunkRetryingInPlace(this ILogger logger, Guid jobId, int chunk, string error);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "Job {JobId} chunk {Chunk}: transient failure {Failures} of at most {Max}; re-sent at {RetryAt:O}: {Error}")]
    public static partial void ChunkRetryLater(this ILogger logger, Guid jobId, int chunk, int failures, int max, DateTimeOffset retryAt, string error);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Job {JobId} chunk {Chunk} failed: {Error}")]
    public static partial void ChunkFailed(this ILogger logger, Guid jobId, int chunk, string error);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "Job {JobId} succeeded: {Scored} rows scored, {Failed} failed")]
    public static partial void JobSucceeded(this ILogger logger, Guid jobId, long scored, long failed);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "Job {JobId} failed: {Reason}")]
    public static partial void JobFailed(this ILogger logger, Guid jobId, string reason);

    [LoggerMessage(EventId = 3020, Level = LogLevel.Warning,
        Message = "Job {JobId} was recorded but its chunk messages were never confirmed as sent (process stopped?); sending its {Chunks} pending chunks")]
    public static partial void UndispatchedJobSent(this ILogger logger, Guid jobId, int chunks);

    [LoggerMessage(EventId = 3021, Level = LogLevel.Warning,
        Message = "Job {JobId}: re-sent {Count} pending chunks ({Chunks}) whose messages were lost, dead-lettered or backed off")]
    public static partial void ChunksResent(this ILogger logger, Guid jobId, int count, string chunks);

    [LoggerMessage(EventId = 3022, Level = LogLevel.Warning, Message = "Job {JobId}: every chunk ended but the job was not finished (worker stopped?); finishing it")]
    public static partial void UnfinishedJobFinished(this ILogger logger, Guid jobId);

    [LoggerMessage(EventId = 3023, Level = LogLevel.Warning,
        Message = "Job {JobId}: the broker never confirmed its {Event} event (connection lost while publishing?); publishing it again")]
    public static partial void EndedEventRepublished(this ILogger logger, Guid jobId, string @event);

    [LoggerMessage(EventId = 3030, Level = LogLevel.Information, Message = "Loaded model {Model} v{Version} ({Provider})")]
    public static partial void ModelLoaded(this ILogger logger, string model, int version, string provider);
}
