using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using BatchScoring.Application.Challengers;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// Closes a job once all its chunks are done: decides succeeded/failed against the error threshold (one winner,
/// decided in PostgreSQL), writes the Parquet <c>_SUCCESS</c> manifest last, and publishes the job's ended event.
/// </summary>
public sealed class JobFinisher(JobStore store, IPublishEndpoint publisher, ChallengerComparisons challengers, ILogger<JobFinisher> logger)
{
    public const string ManifestFileName = "_SUCCESS";

    private static readonly JsonSerializerOptions ManifestJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public async Task TryFinishAsync(Guid jobId, CancellationToken cancellationToken)
    {
        // Only a running job whose chunks have all ended finishes (TryFinishJobAsync's rule). Callers read after their
        // own commit, so they see it; everyone else (a redelivered chunk of a job still scoring) skips the locking UPDATE.
        var finishing = await store.GetJobAsync(jobId, cancellationToken);
        if (finishing is not { State: JobState.Running } || finishing.ChunksDone + finishing.ChunksFailed < finishing.ChunksTotal)
        {
            return;
        }

        // _SUCCESS goes down before the job is marked succeeded: whoever sees the state (or the event) finds the
        // manifest, and a worker dying in between leaves a job still running that the next finisher completes.
        var manifest = WillSucceed(finishing) ? await WriteManifestAsync(finishing, cancellationToken) : null;
        var state = await store.TryFinishJobAsync(jobId, cancellationToken);
        if (state is null)
        {
            return;
        }

        var job = await store.GetJobAsync(jobId, cancellationToken)
            ?? throw new InvalidOperationException($"Job {jobId} vanished while finishing.");
        await StoreComparisonAsync(job, cancellationToken);
        if (state == JobState.Succeeded)
        {
            if (job.OutputParquet is not null && manifest is null)
            {
                await WriteManifestAsync(job, cancellationToken);
            }

            logger.JobSucceeded(job.Id, job.ScoredRows, job.FailedRows);
            OperationsMetrics.JobFinished("succeeded");
        }
        else if (state == JobState.Failed)
        {
            if (manifest is not null)
            {
                File.Delete(manifest);
            }

            LogFailed(job);
        }

        await AnnounceEndAsync(job, cancellationToken);
    }

    /// <summary>
    /// Publishes the ended job's event (<see cref="ScoringJobCompleted"/> or <see cref="ScoringJobFailed"/>) and records
    /// that the broker confirmed it; returns whether it did. An event lost on the way (the connection dropped, the broker
    /// did not confirm within <see cref="BoundedPublish.Timeout"/>) stays unrecorded, and the reconciler publishes it again
    /// (<see cref="DispatchRecovery"/>): delivery is at least once, and every publish of one end carries the same message id.
    /// </summary>
    public async Task<bool> AnnounceEndAsync(JobEntity job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.State is not (JobState.Succeeded or JobState.Failed))
        {
            return false;
        }

        var finishedAt = job.FinishedAt ?? DateTimeOffset.UtcNow;
        var messageId = EndedEventMessageId(job.Id, finishedAt);
        var notSent = job.State == JobState.Succeeded
            ? await publisher.TryPublishAsync(
                new ScoringJobCompleted(job.Id, job.ModelName, job.ModelVersion, job.TotalRows, job.ScoredRows, job.FailedRows,
                    job.OutputTable, job.OutputParquet, finishedAt),
                cancellationToken,
                context => context.MessageId = messageId)
            : await publisher.TryPublishAsync(
                new ScoringJobFailed(job.Id, job.ModelName, job.ModelVersion, job.TotalRows, job.ScoredRows, job.FailedRows,
                    FailureReason(job), finishedAt),
                cancellationToken,
                context => context.MessageId = messageId);
        if (notSent is not null)
        {
            cancellationToken.ThrowIfCancellationRequested();
            logger.LogWarning("Job {JobId}: its ended event was not published ({Error}); the reconciler publishes it again", job.Id, notSent);
            return false;
        }

        if (job.FinishedAt is { } ended)
        {
            await store.MarkEndedEventSentAsync(job.Id, ended, cancellationToken);
        }

        return true;
    }

    /// <summary>The same for every publish of one end of a job (a retried job's next end gets another).</summary>
    internal static Guid EndedEventMessageId(Guid jobId, DateTimeOffset finishedAt)
    {
        Span<byte> input = stackalloc byte[24];
        jobId.TryWriteBytes(input);
        BinaryPrimitives.WriteInt64LittleEndian(input[16..], finishedAt.UtcTicks);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, hash);
        return new Guid(hash[..16]);
    }

    /// <summary>
    /// Whether the finishing transition (<see cref="JobStore.TryFinishJobAsync"/>) will mark this job succeeded: every
    /// chunk done, none failed, failed rows within the threshold. Mirrors that statement's rule.
    /// </summary>
    private static bool WillSucceed(JobEntity job)
    {
        if (job.OutputParquet is null || job.State != JobState.Running || job.ChunksFailed > 0 || job.ChunksDone < job.ChunksTotal)
        {
            return false;
        }

        var rows = Math.Max(job.TotalRows > 0 ? job.TotalRows : job.ScoredRows + job.FailedRows, 1);
        return !(job.ErrorThresholdRows is { } maxRows && job.FailedRows > maxRows)
            && !(job.ErrorThresholdPercent is { } maxPercent && job.FailedRows > 0 && job.FailedRows * 100.0 / rows > maxPercent);
    }

    /// <summary>
    /// Fails a queued or running job now, with <paramref name="reason"/>, because it can no longer succeed (a chunk
    /// failed for good, or its failed rows passed the threshold); its remaining pending chunks fail with it. Publishes
    /// <see cref="ScoringJobFailed"/> once, from the caller whose transition won; returns whether that was this one.
    /// </summary>
    public async Task<bool> FailAsync(Guid jobId, string reason, CancellationToken cancellationToken)
    {
        if (!await store.FailJobAsync(jobId, reason, cancellationToken))
        {
            return false;
        }

        var job = await store.GetJobAsync(jobId, cancellationToken)
            ?? throw new InvalidOperationException($"Job {jobId} vanished while failing.");
        await StoreComparisonAsync(job, cancellationToken);
        LogFailed(job);
        await AnnounceEndAsync(job, cancellationToken);
        return true;
    }

    /// <summary>Before the event: whoever reacts to it finds the comparison. Best effort: the status API merges the chunks' comparisons without it.</summary>
    private async Task StoreComparisonAsync(JobEntity job, CancellationToken cancellationToken)
    {
        if (ChallengerComparisons.PlanOf(job) is null)
        {
            return;
        }

        try
        {
            await challengers.StoreAsync(job, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning("Job {JobId}: the challenger comparison was not stored: {Error}", job.Id, ex.Message);
        }
    }

    private void LogFailed(JobEntity job)
    {
        logger.JobFailed(job.Id, FailureReason(job));
        OperationsMetrics.JobFinished("failed");
    }

    private static string FailureReason(JobEntity job) =>
        job.Error ?? $"{job.FailedRows} of {job.TotalRows} rows failed; {job.ChunksFailed} chunks failed.";

    private async Task<string> WriteManifestAsync(JobEntity job, CancellationToken cancellationToken)
    {
        var chunks = await store.GetChunksAsync(job.Id, cancellationToken);
        var parts = chunks.Where(c => c.State == ChunkState.Succeeded).OrderBy(c => c.ChunkIndex).ToArray();
        var described = await ParquetManifestParts.DescribeAsync(job.OutputParquet!, parts.Select(c => ChunkScorer.PartFileName(c.ChunkIndex)), cancellationToken);
        var schema = parts.Length == 0
            ? []
            : await ParquetDataset.ReadColumnsAsync(Path.Combine(job.OutputParquet!, ChunkScorer.PartFileName(parts[0].ChunkIndex)), cancellationToken);
        var manifest = new
        {
            jobId = job.Id,
            model = job.ModelName,
            modelVersion = job.ModelVersion,
            modelSha256 = job.ModelSha256,
            totalRows = job.TotalRows,
            scoredRows = job.ScoredRows,
            failedRows = job.FailedRows,
            keyColumn = job.KeyColumn,
            completedAt = job.FinishedAt ?? DateTimeOffset.UtcNow,
            schema = schema.Select(c => new { name = c.Name, type = c.Kind.ToString() }).ToArray(),
            parts = described,
        };
        var path = Path.Combine(job.OutputParquet!, ManifestFileName);
        // Two finishers may write it at once (the worker that committed the last chunk and one given a redelivered
        // message of it, or the reconciler): each through its own temporary file, the last rename wins.
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            await File.WriteAllTextAsync(temp, JsonSerializer.Serialize(manifest, ManifestJson), cancellationToken);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }

        return path;
    }
}
