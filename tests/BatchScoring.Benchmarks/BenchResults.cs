using BatchScoring.Application;

namespace BatchScoring.Benchmarks;

/// <summary>A benchmark workload: synthetic data and an MLP features-hidden-hidden-1.</summary>
public sealed record BenchWorkload(string Name, long Rows, int Features, int Hidden)
{
    public static IReadOnlyList<BenchWorkload> All { get; } =
    [
        new("light", 1_000_000, 64, 256),
        new("heavy", 200_000, 256, 1024),
    ];

    public int[] Layers => [Features, Hidden, Hidden, 1];

    public string ModelText => "MLP " + string.Join('-', Layers);
}

public sealed record BenchSettings(
    IReadOnlyList<BenchWorkload> Workloads,
    int BatchRows,
    int ChunkRows,
    string WorkDir,
    bool Parquet,
    IReadOnlyList<DatasetVariant> Variants,
    int OverheadRuns,
    bool LargeJob,
    string PostgresConnectionString,
    string RabbitMqUri,
    BatchScoringOptions Service)
{
    public string CommandLine { get; init; } = "";

    /// <summary>The `batchscore` program that submits the jobs (e.g. a published tool); null: the one built next to the benchmark.</summary>
    public string? CliPath { get; init; }
}

public sealed class BenchReport
{
    public required string Command { get; init; }

    public required BenchEnvironment Environment { get; init; }

    public List<WorkloadResult> Workloads { get; } = [];

    /// <summary>Request mode (queue score-requests) with and without dynamic batching; null when not run (--requests 0).</summary>
    public RequestBenchReport? Requests { get; set; }
}

public sealed class BenchEnvironment
{
    public required int ProcessorCount { get; init; }

    public required string Os { get; init; }

    public required string Runtime { get; init; }

    public required int BatchRows { get; init; }

    public required int ChunkRows { get; init; }

    public required int ChunkConcurrency { get; init; }

    public required int IntraOpThreads { get; init; }

    public required string WorkDir { get; init; }

    public string? LoadAverageAtStart { get; set; }

    public string? LoadAverageAtEnd { get; set; }

    /// <summary>fsync / synchronous_commit / full_page_writes of the PostgreSQL server (COPY numbers depend on them).</summary>
    public string? PostgresDurability { get; set; }

    public string? PostgresVersion { get; set; }
}

public sealed class WorkloadResult
{
    public required string Name { get; init; }

    public required long Rows { get; init; }

    public required int Features { get; init; }

    public required string Model { get; init; }

    public string? ExecutionProvider { get; set; }

    public double GenerateSeconds { get; set; }

    /// <summary>InferenceSession.Run on pre-built row-major [batch, F] tensors, one caller.</summary>
    public double OrtRowsPerSecond { get; set; }

    /// <summary>ScoringModel.Score on the same batches (column binding, validation, output columns).</summary>
    public double ScoreRowsPerSecond { get; set; }

    public long OrtMeasuredRows { get; set; }

    /// <summary>Reading the key, passthrough and feature columns chunk by chunk, as the worker does.</summary>
    public double ParquetReadRowsPerSecond { get; set; }

    /// <summary>Binary COPY of the result rows: one transaction per chunk, one COPY per batch (as the worker does).</summary>
    public double CopyRowsPerSecond { get; set; }

    public double CopySeconds { get; set; }

    /// <summary>CPU of this (client) process during the COPY ceiling: Npgsql serialising rows.</summary>
    public double CopyClientCpuSeconds { get; set; }

    /// <summary>Approximate: CPU of all postgres processes during the COPY ceiling.</summary>
    public double CopyPostgresCpuSeconds { get; set; }

    /// <summary>Parquet part files of the result rows with lineage columns, one file per chunk (as the worker does).</summary>
    public double ParquetWriteRowsPerSecond { get; set; }

    /// <summary>1 / (1/ORT + 1/COPY): scoring and writing one after the other, nothing overlapped.</summary>
    public double SerialCeilingRowsPerSecond { get; set; }

    /// <summary>1 / (1/ORT + 1/COPY + 1/Parquet write).</summary>
    public double SerialCeilingWithParquetRowsPerSecond { get; set; }

    public EndToEndResult? EndToEnd { get; set; }

    public EndToEndResult? EndToEndWithParquet { get; set; }

    /// <summary>Light workload: the same rows as files pipelines write, each scored by the service and by the peer.</summary>
    public List<VariantResult> Variants { get; } = [];

    /// <summary>A 10-row job, submit → `--wait` returns, on the warm service.</summary>
    public OverheadResult? Overhead { get; set; }

    /// <summary>A job on 10 × the rows (--large-job): the serve process's peak RSS and rows/s against the smaller job.</summary>
    public LargeJobResult? LargeJob { get; set; }

    public List<TargetResult> Targets { get; } = [];

    public string? Error { get; set; }
}

public sealed class EndToEndResult
{
    public required string Outputs { get; init; }

    /// <summary>Wall clock from starting `batchscore jobs submit --wait` to its exit.</summary>
    public double Seconds { get; set; }

    public Guid JobId { get; set; }

    /// <summary>Seconds per stage as `jobs status --json` reports them (reading, inferring, COPY, ...), when the service reports them.</summary>
    public Dictionary<string, double>? Stages { get; set; }

    /// <summary>finished_at − created_at of the job as the database recorded it.</summary>
    public double? ServerSeconds { get; set; }

    public double RowsPerSecond { get; set; }

    public long ScoredRows { get; set; }

    public long FailedRows { get; set; }

    public int Chunks { get; set; }

    public double CeilingRowsPerSecond { get; set; }

    public double RatioToSerialCeiling { get; set; }

    public double RatioToOrt { get; set; }

    /// <summary>Rows per inference call, from the worker's batchscoring_batch_size_rows histogram (sum / count).</summary>
    public double AverageBatchRows { get; set; }

    public long InferenceCalls { get; set; }

    /// <summary>Seconds inside ONNX Runtime, summed over the worker's concurrent chunks.</summary>
    public double WorkerInferenceSeconds { get; set; }

    /// <summary>Seconds in COPY, summed over the worker's concurrent chunks.</summary>
    public double WorkerCopySeconds { get; set; }

    public double WorkerCpuSeconds { get; set; }

    /// <summary>Approximate: CPU of every postgres process on this machine during the job.</summary>
    public double PostgresCpuSeconds { get; set; }

    /// <summary>VmHWM of the serve process during this job (reset before it where Linux allows; else since it started).</summary>
    public double WorkerPeakRssMiB { get; set; }

    public double WorkerRssAfterMiB { get; set; }

    /// <summary>True where the peak could not be reset before the job: it then covers the process's whole life.</summary>
    public bool PeakRssSinceStart { get; set; }
}

public sealed record TargetResult(string Name, string Requirement, double Actual, bool Met);

/// <summary>One dataset variant of the light workload: the service (end to end, as a user runs it) against the peer script.</summary>
public sealed class VariantResult
{
    public required string Name { get; init; }

    public required string Description { get; init; }

    public string? File { get; set; }

    public double FileMiB { get; set; }

    /// <summary>Parquet row groups as written: count, smallest and largest (null for CSV).</summary>
    public long? RowGroups { get; set; }

    public long? RowGroupRowsMin { get; set; }

    public long? RowGroupRowsMax { get; set; }

    public EndToEndResult? Service { get; set; }

    /// <summary>Wall clock of the peer process, start to exit.</summary>
    public double PeerSeconds { get; set; }

    public double PeerRowsPerSecond { get; set; }

    public PeerResult? Peer { get; set; }

    /// <summary>Service rows/s ÷ peer rows/s (both wall clock of their command).</summary>
    public double RatioToPeer { get; set; }

    public double RatioToSerialCeiling { get; set; }

    /// <summary>Rows, keys and scores of the service's table equal the peer's (scores within 1e-5).</summary>
    public bool? ResultsMatch { get; set; }

    /// <summary>Row count and Σ score of each table, and the largest score difference per key.</summary>
    public string? Checksum { get; set; }

    public string? Error { get; set; }
}

public sealed class OverheadResult
{
    public int Rows { get; set; }

    public int Runs { get; set; }

    public double MedianSeconds { get; set; }

    public double MinSeconds { get; set; }

    public double MaxSeconds { get; set; }

    /// <summary>finished_at − created_at as the service recorded it, median.</summary>
    public double? MedianServerSeconds { get; set; }

    /// <summary>`batchscore --version`, median: the CLI's own start-up, part of every command.</summary>
    public double CliStartupMedianSeconds { get; set; }

    public string? Error { get; set; }
}

public sealed class LargeJobResult
{
    public long Rows { get; set; }

    public EndToEndResult? Job { get; set; }

    /// <summary>The variant whose job it is compared with (the same format and row groups at 1/10 the rows).</summary>
    public string? ComparedWith { get; set; }

    /// <summary>Large job's rows/s ÷ the compared job's rows/s.</summary>
    public double RatioOfRowsPerSecond { get; set; }

    public string? Error { get; set; }
}

/// <summary>Median of a non-empty list (mean of the middle two for an even count).</summary>
public static class Stats
{
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentOutOfRangeException.ThrowIfZero(values.Count);
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
