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
    string PostgresConnectionString,
    string RabbitMqUri,
    BatchScoringOptions Service)
{
    public string CommandLine { get; init; } = "";
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

    public List<TargetResult> Targets { get; } = [];

    public string? Error { get; set; }
}

public sealed class EndToEndResult
{
    public required string Outputs { get; init; }

    /// <summary>Wall clock from POST /api/jobs to the first poll (every 100 ms) that sees the job succeeded.</summary>
    public double Seconds { get; set; }

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

    /// <summary>VmHWM of the worker process after this job (peak since it started, warm-up included).</summary>
    public double WorkerPeakRssMiB { get; set; }

    public double WorkerRssAfterMiB { get; set; }
}

public sealed record TargetResult(string Name, string Requirement, double Actual, bool Met);
