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

    public static readonly Counter ChunkFailures = Metrics.CreateCounter(
        "batchscoring_chunk_failures_total", "Chunks that could not be scored (unreadable input) or threw and will be redelivered.",
        new CounterConfiguration { LabelNames = ["reason"] });

    public static readonly Counter ChunksCompleted = Metrics.CreateCounter(
        "batchscoring_chunks_completed_total", "Chunks committed.");

    public static readonly Counter ChunkDuplicates = Metrics.CreateCounter(
        "batchscoring_chunk_duplicates_total", "Redelivered chunks skipped because their results were already committed.");

    /// <summary>Touches the class so its unlabelled series are exported (as 0) from start-up, not from the first chunk.</summary>
    public static void EnsureRegistered() => ChunksCompleted.Inc(0);
}
