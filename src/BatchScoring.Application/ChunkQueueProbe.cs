namespace BatchScoring.Application;

/// <summary>The chunk queue as the broker reports it: messages ready for a worker, and the workers consuming it.</summary>
public sealed record ChunkQueueState(string Queue, long ReadyMessages, long Consumers);

/// <summary>The answer of <see cref="IChunkQueueProbe"/>: the state, or why the broker could not be asked.</summary>
public sealed record ChunkQueueReading(ChunkQueueState? State, string? Error);

/// <summary>Asks RabbitMQ about the <c>score-chunks</c> queue (what the status page shows about workers).</summary>
public interface IChunkQueueProbe
{
    Task<ChunkQueueReading> ReadAsync(CancellationToken cancellationToken);
}
