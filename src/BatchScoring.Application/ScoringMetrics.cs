using System.Collections.Concurrent;
using Prometheus;

namespace BatchScoring.Application;

/// <summary>Prometheus instruments (no per-job labels: job ids would explode cardinality).</summary>
public static class ScoringMetrics
{
    public static readonly Counter RowsScored = Metrics.CreateCounter(
        "batchscoring_rows_scored_total", "Rows scored and written.", new CounterConfiguration { LabelNames = ["model", "mode"] });

    public static readonly Counter RowsFailed = Metrics.CreateCounter(
        "batchscoring_rows_failed_total", "Rows recorded as failed (poison rows, model errors).", new CounterConfiguration { LabelNames = ["model", "mode"] });

    public static readonly Histogram BatchRows = Metrics.CreateHistogram(
        "batchscoring_batch_size_rows", "Rows per inference call.",
        new HistogramConfiguration { LabelNames = ["model", "mode"], Buckets = Histogram.ExponentialBuckets(1, 4, 9) });

    public static readonly Histogram InferenceSeconds = Metrics.CreateHistogram(
        "batchscoring_inference_duration_seconds", "Time in ONNX Runtime per inference call.",
        new HistogramConfiguration { LabelNames = ["model", "mode"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });

    public static readonly Histogram CopySeconds = Metrics.CreateHistogram(
        "batchscoring_db_copy_duration_seconds", "Time writing results to PostgreSQL per batch.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });

    public static readonly Histogram QueueWaitSeconds = Metrics.CreateHistogram(
        "batchscoring_queue_wait_seconds", "Time from a message being sent to a worker starting on it.",
        new HistogramConfiguration { LabelNames = ["mode"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 20) });

    /// <summary>
    /// Score requests finished (answered and acknowledged) by outcome: those of <c>ScoreRequestOutcome</c>, or
    /// <c>failed</c> for a request moved to the error queue after its retries. Only the outcome is a label: model
    /// names in requests are caller input, and a rejected request's name may be anything.
    /// </summary>
    public const string RequestFailedOutcome = "failed";

    public static readonly Counter RequestsFinished = Metrics.CreateCounter(
        "batchscoring_requests_total", "Score requests answered and acknowledged, by outcome.", new CounterConfiguration { LabelNames = ["outcome"] });

    public static readonly Histogram RequestSeconds = Metrics.CreateHistogram(
        "batchscoring_request_duration_seconds", "Time from a worker receiving a score request to its answer being confirmed and the message acknowledged.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });

    public static readonly Counter ChunkFailures = Metrics.CreateCounter(
        "batchscoring_chunk_failures_total",
        "Chunk errors by reason: permanent, poison, retries_exhausted (chunk failed); retry (in place), retry_later (left to the reconciler), resent (by the reconciler).",
        new CounterConfiguration { LabelNames = ["reason"] });

    public static readonly Counter ChunksCompleted = Metrics.CreateCounter(
        "batchscoring_chunks_completed_total", "Chunks committed.");

    public static readonly Counter ChunkDuplicates = Metrics.CreateCounter(
        "batchscoring_chunk_duplicates_total", "Redelivered chunks skipped because their results were already committed.");

    private static readonly ConcurrentDictionary<string, Counter.Child> s_requestsByOutcome = new(StringComparer.Ordinal);

    /// <summary>Counts a finished request (children cached: this runs once per request, tens of thousands a second).</summary>
    public static void RequestFinished(string outcome, TimeSpan elapsed)
    {
        s_requestsByOutcome.GetOrAdd(outcome, static o => RequestsFinished.WithLabels(o)).Inc();
        RequestSeconds.Observe(elapsed.TotalSeconds);
    }

    /// <summary>Requests finished so far, all outcomes.</summary>
    public static double RequestsFinishedAll() => s_requestsByOutcome.Values.Sum(c => c.Value);

    /// <summary>Requests finished so far with the given outcome.</summary>
    public static double RequestsFinishedWith(string outcome) => s_requestsByOutcome.GetOrAdd(outcome, static o => RequestsFinished.WithLabels(o)).Value;

    /// <summary>Touches the class so its unlabelled series are exported (as 0) from start-up, not from the first chunk.</summary>
    public static void EnsureRegistered() => ChunksCompleted.Inc(0);
}
