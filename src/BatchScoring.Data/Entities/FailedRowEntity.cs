namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.failed_rows</c> (surrogate identity key <see cref="Id"/>).</summary>
public sealed class FailedRowEntity
{
    public long Id { get; set; }

    public Guid? JobId { get; set; }

    public string? RequestId { get; set; }

    public int? ChunkIndex { get; set; }

    public long RowNumber { get; set; }

    public string? RowKey { get; set; }

    /// <summary>The key with its type as read, as JSON text (<c>row_key_json</c>, jsonb); null when not recorded.</summary>
    public string? RowKeyJson { get; set; }

    public string? ColumnName { get; set; }

    public string Reason { get; set; } = "";

    public DateTimeOffset RecordedAt { get; set; }
}
