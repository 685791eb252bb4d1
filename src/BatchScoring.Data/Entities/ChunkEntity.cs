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

    /// <summary>
    /// A chunk that combines several slices (row groups, files): their list as JSON, in reading order
    /// (<c>[{"path","rowGroup","rowStart","rowCount","byteOffset"}]</c>); null when the chunk is the one slice above.
    /// </summary>
    public string? Ranges { get; set; }

    public ChunkState State { get; set; } = ChunkState.Pending;

    public int Attempts { get; set; }

    public long ScoredRows { get; set; }

    public long FailedRows { get; set; }

    public string? Worker { get; set; }

    public string? Error { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    /// <summary>Messages sent for this chunk (first dispatch, reconciler re-sends, retries).</summary>
    public int Sends { get; set; }

    public DateTimeOffset? SentAt { get; set; }

    /// <summary>Attempts that started but recorded no outcome: the worker died or stopped mid-chunk.</summary>
    public int OpenAttempts { get; set; }

    /// <summary>Transient failures recorded by workers since the chunk was last (re)started by a retry.</summary>
    public int Failures { get; set; }

    public DateTimeOffset? FirstFailedAt { get; set; }

    public string? LastError { get; set; }

    /// <summary>When the reconciler re-sends the chunk (set when a worker gave up on a transient failure).</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }
}
