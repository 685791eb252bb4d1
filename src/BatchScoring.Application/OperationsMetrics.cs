using System.Diagnostics.Metrics;

namespace BatchScoring.Application;

/// <summary>
/// Instruments the alert rules read (deploy/k8s/prometheus-rules.yaml), on the <c>BatchScoring</c> meter:
/// how jobs end, chunks being scored now, and retraining requests published.
/// </summary>
public static class OperationsMetrics
{
    public static readonly Counter<long> JobsFinished = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_jobs_finished_total", description: "Jobs that reached a final state, by state (succeeded, failed, cancelled).");

    public static readonly UpDownCounter<long> ChunksInProgress = ScoringMetrics.Meter.CreateUpDownCounter<long>(
        "batchscoring_chunks_in_progress", description: "Chunk messages this worker is scoring now.");

    public static readonly Counter<long> RetrainingRequested = ScoringMetrics.Meter.CreateCounter<long>(
        "batchscoring_retraining_requested_total", description: "RetrainingRequested events published, by reason (drift, performance).");

    public static void JobFinished(string state) => JobsFinished.Add(1, new KeyValuePair<string, object?>("state", state));

    public static void RetrainingPublished(string reason) => RetrainingRequested.Add(1, new KeyValuePair<string, object?>("reason", reason));

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
