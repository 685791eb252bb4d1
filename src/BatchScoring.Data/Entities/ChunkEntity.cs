namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.chunks</c>: one claim-check unit of work of a job.</summary>
public sealed class ChunkEntity
{
    public Guid JobId { get; set; }

    public int ChunkIndex { get; set; }

    /// <summary>File (or query) the chunk reads from.</summary>
    public string SourcePath { get; set; } = "";

    /// <summary>Parquet row group, when the chunk is one row group.</summary>
    public int? RowGroup { get; set; }

    /// <summary>First row of the chunk within <see cref="SourcePath"/> (or the row group).</summary>
    public long RowStart { get; set; }

    public long RowCount { get; set; }

    /// <summary>CSV: byte offset of the chunk's first row.</summary>
    public long ByteOffset { get; set; }

    public ChunkState State { get; set; } = ChunkState.Pending;

    public int Attempts { get; set; }

    public long ScoredRows { get; set; }

    public long FailedRows { get; set; }

    public string? Worker { get; set; }

    public string? Error { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }
}
