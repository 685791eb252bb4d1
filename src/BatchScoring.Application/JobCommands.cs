using BatchScoring.Data;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>A retry the service refuses; the message says why and what to do instead.</summary>
public sealed class JobRetryRefusedException(string message) : InvalidOperationException(message);

/// <summary>Cancel stops scheduling a job's remaining chunks; retry re-runs what did not succeed (docs/job-failures.md).</summary>
public sealed class JobCommands(JobStore store, ChunkDispatcher dispatcher, ILogger<JobCommands> logger)
{
    /// <summary>Cancels the tenant's job if it is still active; returns it, or null when the tenant has no such job.</summary>
    public async Task<JobEntity?> CancelAsync(Guid id, string tenant, CancellationToken cancellationToken)
    {
        if (await OwnJobAsync(id, tenant, cancellationToken) is null)
        {
            return null;
        }

        if (await store.CancelJobAsync(id, cancellationToken))
        {
            logger.LogInformation("Job {JobId} cancelled", id);
            OperationsMetrics.JobFinished("cancelled");
        }

        return await store.GetJobAsync(id, cancellationToken);
    }

    /// <summary>
    /// Re-runs a job that did not succeed. Failed or cancelled: its failed and pending chunks (succeeded chunks are kept,
    /// so no row is written twice); a job that failed on its error threshold is re-run from scratch (its results are
    /// deleted first), as its failed rows would otherwise fail it again. Queued or running (stuck): its pending chunks are
    /// sent again, with fresh retry limits. Returns null when the tenant has no such job; throws
    /// <see cref="JobRetryRefusedException"/> for a job that succeeded.
    /// </summary>
    public async Task<JobEntity?> RetryAsync(Guid id, string tenant, CancellationToken cancellationToken)
    {
        var job = await OwnJobAsync(id, tenant, cancellationToken);
        if (job is null)
        {
            return null;
        }

        var mode = job.State switch
        {
            JobState.Succeeded => throw new JobRetryRefusedException(
                $"Job {id} succeeded; there is nothing to retry. To score its input again, submit a new job."),
            JobState.Queued or JobState.Running => RetryMode.Resume,
            _ when ChunkScorer.ThresholdExceeded(job, job.FailedRows) is not null => RetryMode.Everything,
            _ => RetryMode.FailedChunks,
        };

        // Null: the job changed state meanwhile (e.g. it just finished); the caller sees its current state.
        var pending = await store.PrepareRetryAsync(id, mode, cancellationToken);
        if (pending is null)
        {
            var now = await store.GetJobAsync(id, cancellationToken);
            throw new JobRetryRefusedException(
                $"Job {id} changed to {(now is null ? "deleted" : StateText.ToDb(now.State))} while it was being retried; check its state and retry again if needed.");
        }

        logger.LogInformation("Job {JobId} retried ({Mode}, was {State}): {Chunks} chunks sent", id, mode, StateText.ToDb(job.State), pending.Count);
        await dispatcher.DispatchAsync(job, pending, cancellationToken);
        return await store.GetJobAsync(id, cancellationToken);
    }

    /// <summary>Another tenant's job is answered exactly like a job that does not exist.</summary>
    private async Task<JobEntity?> OwnJobAsync(Guid id, string tenant, CancellationToken cancellationToken) =>
        await store.GetJobAsync(id, cancellationToken) is { } job && job.Tenant == tenant ? job : null;
}
