using System.Diagnostics;
using System.Diagnostics.Metrics;
using BatchScoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application;

/// <summary>The stages a chunk's time is split into (docs/job-timing.md); the metric label <c>stage</c> spells them in lower case.</summary>
public enum ChunkStage
{
    /// <summary>Reading the chunk's rows from the input (file or query).</summary>
    Read,

    /// <summary>Input columns to model tensors (binding, validation) and model outputs to result rows.</summary>
    Convert,

    /// <summary>ONNX Runtime's Run.</summary>
    Infer,

    /// <summary>COPYing result and failed rows into PostgreSQL.</summary>
    Copy,

    /// <summary>Writing Parquet part files.</summary>
    Parquet,

    /// <summary>The chunk's message waiting in the queue: sent → a worker starting it.</summary>
    Wait,
}

/// <summary>
/// Seconds one attempt at a chunk spends per stage. Thread-safe: a COPY runs while the next batch is scored. Stages
/// that overlap inside a chunk each count their own time, so their sum may exceed the chunk's wall time.
/// </summary>
public sealed class ChunkStageTimings
{
    private static readonly string[] StageNames = Enum.GetNames<ChunkStage>().Select(n => n.ToLowerInvariant()).ToArray();

    /// <summary>One series per stage (label <c>stage</c>): seconds per committed chunk; <c>_sum</c> is the total time in the stage.</summary>
    public static readonly Histogram<double> StageDuration = ScoringMetrics.Meter.CreateHistogram(
        "batchscoring_chunk_stage_duration_seconds", "s",
        "Seconds a committed chunk spent per stage (read, convert, infer, copy, parquet, wait).", tags: null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });

    private readonly long[] _ticks = new long[StageNames.Length];

    /// <param name="queueWait">How long the chunk's message waited in the queue before this worker took it.</param>
    public ChunkStageTimings(TimeSpan queueWait)
    {
        _ticks[(int)ChunkStage.Wait] = Math.Max(0, queueWait.Ticks);
    }

    /// <summary>Adds the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/>) to <paramref name="stage"/>.</summary>
    public void AddSince(ChunkStage stage, long startTimestamp) => Add(stage, Stopwatch.GetElapsedTime(startTimestamp));

    public void Add(ChunkStage stage, TimeSpan elapsed) => Interlocked.Add(ref _ticks[(int)stage], elapsed.Ticks);

    /// <summary>Splits a <see cref="ScoringModel.Score"/> call that took <paramref name="total"/> into inference and conversion.</summary>
    public void AddScore(TimeSpan total, ScoreResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var run = result.RunTime < total ? result.RunTime : total;
        Add(ChunkStage.Infer, run);
        Add(ChunkStage.Convert, total - run);
    }

    public TimeSpan this[ChunkStage stage] => TimeSpan.FromTicks(Interlocked.Read(ref _ticks[(int)stage]));

    /// <summary>What the chunk row stores.</summary>
    public StageSeconds ToSeconds() => new(
        this[ChunkStage.Read].TotalSeconds, this[ChunkStage.Convert].TotalSeconds, this[ChunkStage.Infer].TotalSeconds,
        this[ChunkStage.Copy].TotalSeconds, this[ChunkStage.Parquet].TotalSeconds, this[ChunkStage.Wait].TotalSeconds);

    /// <summary>Records the committed chunk's stages on <see cref="StageDuration"/>.</summary>
    public void RecordMetrics()
    {
        for (var stage = 0; stage < StageNames.Length; stage++)
        {
            StageDuration.Record(this[(ChunkStage)stage].TotalSeconds, new KeyValuePair<string, object?>("stage", StageNames[stage]));
        }
    }
}
