using BatchScoring.Data;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>Cancel stops scheduling a job's remaining chunks; retry re-sends only the chunks that did not succeed.</summary>
public sealed class JobCommands(JobStore store, ChunkDispatcher dispatcher, ILogger<JobCommands> logger)
{
    public async Task<JobEntity?> CancelAsync(Guid id, CancellationToken cancellationToken)
    {
        var cancelled = await store.CancelJobAsync(id, cancellationToken);
        if (cancelled)
        {
            logger.LogInformation("Job {JobId} cancelled", id);
        }

        return await store.GetJobAsync(id, cancellationToken);
    }

    /// <summary>Returns null when the job does not exist; throws <see cref="InvalidOperationException"/> when it cannot be retried.</summary>
    public async Task<JobEntity?> RetryAsync(Guid id, CancellationToken cancellationToken)
    {
        var job = await store.GetJobAsync(id, cancellationToken);
        if (job is null)
        {
            return null;
        }

        if (job.State is not (JobState.Failed or JobState.Cancelled))
        {
            throw new InvalidOperationException($"Job {id} is {StateText.ToDb(job.State)}; only failed or cancelled jobs can be retried.");
        }

        var pending = await store.PrepareRetryAsync(id, cancellationToken) ?? [];
        logger.LogInformation("Job {JobId} retried: {Chunks} chunks re-sent", id, pending.Count);
        await dispatcher.DispatchAsync(job, pending, cancellationToken);
        return await store.GetJobAsync(id, cancellationToken);
    }
}
