using BatchScoring.Scoring.Data;

namespace BatchScoring.Data;

/// <summary>A typed column of a result table (key, passthrough or model output).</summary>
public sealed record ResultColumn(string Name, ColumnKind Kind)
{
    /// <summary>PostgreSQL type for a column kind.</summary>
    public static string PostgresType(ColumnKind kind) => kind switch
    {
        ColumnKind.Float32 => "real",
        ColumnKind.Float64 => "double precision",
        ColumnKind.Int32 => "integer",
        ColumnKind.Int64 => "bigint",
        ColumnKind.Boolean => "boolean",
        ColumnKind.String => "text",
        ColumnKind.Timestamp => "timestamp with time zone",
        ColumnKind.Float32List => "real[]",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public string PostgresType() => PostgresType(Kind);
}

/// <summary>Values of the fixed columns of every result row written by one COPY.</summary>
public sealed record ResultRowContext(Guid? JobId, string? RequestId, string ModelName, int ModelVersion, DateTimeOffset ScoredAt);
