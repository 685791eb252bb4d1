using System.Diagnostics.Metrics;

namespace BatchScoring.Application;

/// <summary>
/// Instruments the alert rules read (deploy/k8s/prometheus-rules.yaml), on the <c>BatchScoring</c> meter:
/// how jobs end, chunks being scored now, retraining requests published, and whether the reconciler runs.
/// </summary>
public static class OperationsMetrics
{
    public static readonly Counter<long> JobsFinished = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_jobs_finished_total", description: "Jobs that reached a final state, by state (succeeded, failed, cancelled).");

    public static readonly UpDownCounter<long> ChunksInProgress = ScoringMetrics.Meter.CreateUpDownCounter<long>(
        "batchscoring_chunks_in_progress", description: "Chunk messages this worker is scoring now.");

    public static readonly Counter<long> RetrainingRequested = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_retraining_requested_total", description: "RetrainingRequested events published, by reason (drift, performance).");

    public static readonly Counter<long> ReconcilerPasses = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_reconciler_passes_total", description: "Reconciler passes by outcome (completed, failed); exported only by processes with the scheduler role.");

    public static readonly Counter<long> ReconcilerActions = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_reconciler_actions_total",
        description: "What reconciler passes did: jobs_dispatched, chunks_resent, chunks_failed, jobs_finished, ends_announced.");

    public static void JobFinished(string state) => JobsFinished.Add(1, new KeyValuePair<string, object?>("state", state));

    public static void RetrainingPublished(string reason) => RetrainingRequested.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Counts a completed reconciler pass and what it did.</summary>
    public static void ReconcilerPassed(ReconcileResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        ReconcilerPasses.Add(1, new KeyValuePair<string, object?>("outcome", "completed"));
        foreach (var (action, count) in ReconcilerActionCounts(result))
        {
            if (count > 0)
            {
                ReconcilerActions.Add(count, new KeyValuePair<string, object?>("action", action));
            }
        }
    }

    public static void ReconcilerFailed() => ReconcilerPasses.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));

    /// <summary>
    /// Exports the reconciler's series as 0 from start-up, in processes with the scheduler role only: a deployment where
    /// no process exports them has no reconciler (nor schedules), which the alert on their absence reports.
    /// </summary>
    public static void EnsureReconcilerRegistered()
    {
        foreach (var outcome in (string[])["completed", "failed"])
        {
            ReconcilerPasses.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }

        foreach (var (action, _) in ReconcilerActionCounts(new ReconcileResult(0, 0, 0, 0, 0)))
        {
            ReconcilerActions.Add(0, new KeyValuePair<string, object?>("action", action));
        }
    }

    private static (string Action, int Count)[] ReconcilerActionCounts(ReconcileResult result) =>
    [
        ("jobs_dispatched", result.JobsDispatched), ("chunks_resent", result.ChunksResent), ("chunks_failed", result.ChunksFailed),
        ("jobs_finished", result.JobsFinished), ("ends_announced", result.EndsAnnounced),
    ];

    /// <summary>Exports every series the alerts read as 0 from start-up, so <c>increase()</c> sees the first event.</summary>
    public static void EnsureRegistered()
    {
        foreach (var state in (string[])["succeeded", "failed", "cancelled"])
        {
            JobsFinished.Add(0, new KeyValuePair<string, object?>("state", state));
        }

        foreach (var reason in (string[])[Contracts.RetrainingReasons.Drift, Contracts.RetrainingReasons.Performance])
        {
            RetrainingRequested.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }

        foreach (var reason in (string[])["permanent", "poison", "retries_exhausted", "retry", "retry_later", "resent"])
        {
            ScoringMetrics.ChunkFailed(reason, 0);
        }

        ChunksInProgress.Add(0);
    }
}
