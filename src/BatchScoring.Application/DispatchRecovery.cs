using BatchScoring.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// Re-sends the pending chunks of jobs whose chunk messages were never confirmed as sent: the API (or a retry)
/// records a job, then sends its messages, and a process that dies in between would leave the job waiting forever.
/// The chunks table is the outbox; re-sending is safe because a chunk commits once and duplicates are skipped.
/// </summary>
public sealed class DispatchRecovery(IServiceScopeFactory scopes, JobStore store, ILogger<DispatchRecovery> logger)
{
    /// <summary>Re-dispatches jobs left undispatched for longer than <paramref name="grace"/>; returns how many.</summary>
    public async Task<int> RecoverAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        var stale = await store.ListUndispatchedJobsAsync(DateTimeOffset.UtcNow - grace, cancellationToken);
        var recovered = 0;
        foreach (var id in stale)
        {
            if (await store.GetJobAsync(id, cancellationToken) is not { State: JobState.Queued or JobState.Running } job)
            {
                continue;
            }

            var pending = await store.GetPendingChunksAsync(id, cancellationToken);
            logger.LogWarning(
                "Job {JobId} was recorded but its chunk messages were never confirmed as sent (process stopped?); sending its {Chunks} pending chunks",
                id, pending.Count);
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ChunkDispatcher>().DispatchAsync(job, pending, cancellationToken);
            recovered++;
        }

        return recovered;
    }
}
