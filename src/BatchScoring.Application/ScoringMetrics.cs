using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace BatchScoring.Application;

/// <summary>
/// The service's instruments, all on the meter <see cref="MeterName"/>, which the host exports on <c>/metrics</c> under
/// these names (no per-job labels: job ids would explode cardinality). A new instrument on a meter of that name is
/// exported without further wiring.
/// </summary>
public static class ScoringMetrics
{
    public const string MeterName = "BatchScoring";

    public static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> RowsScored = Meter.CreateCounter<long>(
        "batchscoring_rows_scored_total", description: "Rows scored and written.");

    public static readonly Counter<long> RowsFailed = Meter.CreateCounter<long>(
        "batchscoring_rows_failed_total", description: "Rows recorded as failed (poison rows, model errors).");

    public static readonly Histogram<double> BatchRows = Histogram(
        "batchscoring_batch_size_rows", null, "Rows per inference call.", Exponential(1, 4, 9));

    public static readonly Histogram<double> InferenceSeconds = Histogram(
        "batchscoring_inference_duration_seconds", "s", "Time in ONNX Runtime per inference call.", Exponential(0.0005, 2, 16));

    public static readonly Histogram<double> CopySeconds = Histogram(
        "batchscoring_db_copy_duration_seconds", "s", "Time writing results to PostgreSQL per batch.", Exponential(0.001, 2, 16));

    public static readonly Histogram<double> QueueWaitSeconds = Histogram(
        "batchscoring_queue_wait_seconds", "s", "Time from a message being sent to a worker starting on it.", Exponential(0.001, 2, 20));

    /// <summary>
    /// Score requests finished (answered and acknowledged) by outcome: those of <c>ScoreRequestOutcome</c>, or
    /// <c>failed</c> for a request moved to the error queue after its retries. Only the outcome is a label: model
    /// names in requests are caller input, and a rejected request's name may be anything.
    /// </summary>
    public const string RequestFailedOutcome = "failed";

    public static readonly Counter<long> RequestsFinished = Meter.CreateCounter<long>(
        "batchscoring_requests_total", description: "Score requests answered and acknowledged, by outcome.");

    public static readonly Histogram<double> RequestSeconds = Histogram(
        "batchscoring_request_duration_seconds", "s",
        "Time from a worker receiving a score request to its answer being confirmed and the message acknowledged.", Exponential(0.001, 2, 16));

    public static readonly Counter<long> ChunkFailures = Meter.CreateCounter<long>(
        "batchscoring_chunk_failures_total",
        description: "Chunk errors by reason: permanent, poison, retries_exhausted (chunk failed); retry (in place), retry_later (left to the reconciler), resent (by the reconciler).");

    public static readonly Counter<long> ChunksCompleted = Meter.CreateCounter<long>(
        "batchscoring_chunks_completed_total", description: "Chunks committed.");

    public static readonly Counter<long> ChunkDuplicates = Meter.CreateCounter<long>(
        "batchscoring_chunk_duplicates_total", description: "Redelivered chunks skipped because their results were already committed.");

    public static readonly Gauge<double> DriftedColumns = Meter.CreateGauge<double>(
        "batchscoring_drift_columns_drifted", description: "Columns found drifted by the latest drift audit of a model version.");

    public static readonly Gauge<double> DriftMaxPsi = Meter.CreateGauge<double>(
        "batchscoring_drift_max_psi", description: "Largest population stability index over the columns in the latest drift audit of a model version.");

    public static readonly Counter<long> DriftAudits = Meter.CreateCounter<long>(
        "batchscoring_drift_audits_total", description: "Drift audits run, by trigger and result.");

    public static readonly Counter<long> DriftSamplesDropped = Meter.CreateCounter<long>(
        "batchscoring_drift_samples_dropped_total", description: "Drift samples dropped because the writer was behind or the database refused them.");

    private static readonly ConcurrentDictionary<string, KeyValuePair<string, object?>> s_outcomeTags = new(StringComparer.Ordinal);

    /// <summary>Labels <c>model</c> and <c>mode</c> (<c>job</c> or <c>request</c>).</summary>
    public static TagList ModelTags(string model, string mode) => new() { { "model", model }, { "mode", mode } };

    /// <summary>Label <c>mode</c> (<c>job</c> or <c>request</c>).</summary>
    public static KeyValuePair<string, object?> ModeTag(string mode) => new("mode", mode);

    /// <summary>Counts a finished request (the outcome tag cached: this runs once per request, tens of thousands a second).</summary>
    public static void RequestFinished(string outcome, TimeSpan elapsed)
    {
        RequestsFinished.Add(1, s_outcomeTags.GetOrAdd(outcome, static o => new("outcome", o)));
        RequestSeconds.Record(elapsed.TotalSeconds);
    }

    public static void ChunkFailed(string reason, long count = 1) => ChunkFailures.Add(count, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Exports the unlabelled counters (as 0) from start-up, not from their first event.</summary>
    public static void EnsureRegistered()
    {
        ChunksCompleted.Add(0);
        ChunkDuplicates.Add(0);
        DriftSamplesDropped.Add(0);
    }

    private static Histogram<double> Histogram(string name, string? unit, string description, double[] buckets) =>
        Meter.CreateHistogram(name, unit, description, tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    /// <summary>The bucket bounds <c>start, start·factor, …</c> (<paramref name="count"/> of them), as Prometheus clients make them.</summary>
    private static double[] Exponential(double start, double factor, int count)
    {
        var bounds = new double[count];
        for (var i = 0; i < count; i++)
        {
            bounds[i] = start * Math.Pow(factor, i);
        }

        return bounds;
    }
}
