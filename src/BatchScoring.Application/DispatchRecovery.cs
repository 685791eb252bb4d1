using BatchScoring.Contracts;
using BatchScoring.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>What one reconciler pass did.</summary>
public sealed record ReconcileResult(int JobsDispatched, int ChunksResent, int ChunksFailed, int JobsFinished, int EndsAnnounced);

/// <summary>
/// The chunk reconciler (scheduler role, every <see cref="BatchScoringOptions.DispatchRecoverySchedule"/>). The chunks
/// table is the outbox and the source of truth; a chunk's message is only a wake-up call, so whatever happened to the
/// message, the pending chunk is found here:
/// <list type="bullet">
/// <item>jobs recorded but never confirmed as sent (the API died in between) are dispatched;</item>
/// <item>chunks a worker gave up on for now (a transient error outlasted its in-place retries) are re-sent once their
/// backoff elapsed;</item>
/// <item>chunks whose message is gone without a trace (purged, lost, dead-lettered while PostgreSQL was down) are
/// re-sent once their job has been quiet for <see cref="ChunkRetryOptions.LostAfterSeconds"/>;</item>
/// <item>a chunk sent <see cref="ChunkRetryOptions.MaxSends"/> times fails, and its job with it;</item>
/// <item>running jobs whose chunks have all ended but that nobody finished (the worker stopped between the last chunk's
/// commit and the finisher) are finished by <see cref="JobFinisher"/> once quiet for <see cref="ChunkRetryOptions.LostAfterSeconds"/>;</item>
/// <item>jobs that ended more than <see cref="BatchScoringOptions.DispatchRecoveryGraceSeconds"/> ago without the broker
/// confirming their ended event (the connection dropped while it was published) have it published again.</item>
/// </list>
/// Re-sending is safe: a chunk commits once and workers skip duplicates.
/// </summary>
public sealed class DispatchRecovery(
    IServiceScopeFactory scopes, JobStore store, NpgsqlDataSource dataSource, IOptions<BatchScoringOptions> options, ILogger<DispatchRecovery> logger)
{
    private const int BatchSize = 500;

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
            logger.UndispatchedJobSent(id, pending.Count);
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ChunkDispatcher>().DispatchAsync(job, pending, cancellationToken);
            recovered++;
        }

        return recovered;
    }

    /// <summary>
    /// One pass: undispatched jobs, chunks due for a re-send, then jobs left unfinished (see the class summary), counted
    /// in <c>batchscoring_reconciler_passes_total</c> and <c>batchscoring_reconciler_actions_total</c>.
    /// </summary>
    public async Task<ReconcileResult> ReconcileAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await ReconcileOnceAsync(cancellationToken);
            OperationsMetrics.ReconcilerPassed(result);
            return result;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            OperationsMetrics.ReconcilerFailed();
            throw;
        }
    }

    private async Task<ReconcileResult> ReconcileOnceAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var dispatched = await RecoverAsync(TimeSpan.FromSeconds(settings.DispatchRecoveryGraceSeconds), cancellationToken);
        var retry = settings.ChunkRetry;
        int resent = 0, failed = 0;
        await using var scope = scopes.CreateAsyncScope();
        var dispatcher = scope.ServiceProvider.GetRequiredService<ChunkDispatcher>();
        var finisher = scope.ServiceProvider.GetRequiredService<JobFinisher>();
        while (!cancellationToken.IsCancellationRequested)
        {
            var due = await store.ClaimChunksToResendAsync(TimeSpan.FromSeconds(retry.LostAfterSeconds), BatchSize, cancellationToken);
            if (due.Count == 0)
            {
                break;
            }

            // Claiming counted this send; past the limit the chunk fails instead of going out again.
            var (exhausted, send) = (due.Where(c => c.Sends > retry.MaxSends).ToArray(), due.Where(c => c.Sends <= retry.MaxSends).ToArray());
            foreach (var chunk in exhausted)
            {
                var reason = $"its message was sent {chunk.Sends - 1} times without an outcome; last error: {chunk.LastError ?? "none recorded"}";
                if (await ChunkCommit.FailChunkAsync(dataSource, chunk.JobId, chunk.ChunkIndex, "reconciler", reason, cancellationToken) is not null)
                {
                    failed++;
                    await finisher.FailAsync(chunk.JobId, $"chunk {chunk.ChunkIndex} failed: {reason}", cancellationToken);
                }
            }

            if (send.Length > 0)
            {
                await dispatcher.SendAsync(send, cancellationToken);
                resent += send.Length;
                foreach (var job in send.GroupBy(c => c.JobId))
                {
                    logger.ChunksResent(job.Key, job.Count(), string.Join(", ", job.Select(c => c.ChunkIndex).Take(20)));
                }
            }

            if (due.Count < BatchSize)
            {
                break;
            }
        }

        var finished = 0;
        foreach (var id in await store.ListUnfinishedJobsAsync(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(retry.LostAfterSeconds), cancellationToken))
        {
            logger.UnfinishedJobFinished(id);
            await finisher.TryFinishAsync(id, cancellationToken);
            finished++;
        }

        var announced = 0;
        foreach (var id in await store.ListUnannouncedEndsAsync(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(settings.DispatchRecoveryGraceSeconds), cancellationToken))
        {
            if (await store.GetJobAsync(id, cancellationToken) is { State: JobState.Succeeded or JobState.Failed } job)
            {
                logger.EndedEventRepublished(id, job.State == JobState.Succeeded ? nameof(ScoringJobCompleted) : nameof(ScoringJobFailed));
                if (!await finisher.AnnounceEndAsync(job, cancellationToken))
                {
                    break; // the broker is not taking events: the next pass tries again
                }

                announced++;
            }
        }

        ScoringMetrics.ChunkFailed("resent", resent);
        return new ReconcileResult(dispatched, resent, failed, finished, announced);
    }
}
