namespace BatchScoring.Scoring.Data;

public enum DatasetFormat
{
    Parquet,
    Csv,

    /// <summary>Rows of a SELECT on a named PostgreSQL source, read by BatchScoring.Data.SqlDataset.</summary>
    Sql,
}

/// <summary>A column as the input files declare it (CSV: as inferred from the header and the first rows).</summary>
public sealed record SourceColumn(string Name, ColumnKind Kind, bool Nullable);

/// <summary>
/// A slice of the input that one worker reads on its own: a Parquet row group (or a row range inside one),
/// or a CSV row range starting at a known byte offset. Chunks point at data; rows never travel in messages.
/// </summary>
/// <remarks>
/// A job chunk may combine several such slices, of one or more files (<see cref="Ranges"/>); then <see cref="Path"/>,
/// <see cref="RowGroup"/>, <see cref="RowStart"/> and <see cref="ByteOffset"/> are those of its first range and
/// <see cref="RowCount"/> is the rows of all its ranges. Without ranges the chunk is the one slice its fields name.
/// </remarks>
public sealed record ChunkSpec(int Index, string Path, int? RowGroup, long RowStart, long RowCount, long ByteOffset = 0)
{
    /// <summary>The slices this chunk reads, in order, when it combines more than one; null for a single slice.</summary>
    public IReadOnlyList<ChunkRange>? Ranges { get; init; }

    /// <summary>The slices to read, in order: <see cref="Ranges"/>, or the chunk itself as one range.</summary>
    public IReadOnlyList<ChunkRange> ReadRanges() =>
        Ranges is { Count: > 0 } ranges ? ranges : [new ChunkRange(Path, RowGroup, RowStart, RowCount, ByteOffset)];

    /// <summary>One range of this chunk as a chunk of its own (same index), for the single-slice readers.</summary>
    public ChunkSpec ForRange(ChunkRange range)
    {
        ArgumentNullException.ThrowIfNull(range);
        return new ChunkSpec(Index, range.Path, range.RowGroup, range.RowStart, range.RowCount, range.ByteOffset);
    }
}

/// <summary>
/// One slice of a file inside a chunk: a Parquet row group (or a row range of one, <see cref="RowStart"/> counted from
/// the file's first row), or a CSV row range starting at <see cref="ByteOffset"/>.
/// </summary>
public sealed record ChunkRange(string Path, int? RowGroup, long RowStart, long RowCount, long ByteOffset = 0);

public sealed record DatasetPlan(
    DatasetFormat Format,
    IReadOnlyList<SourceColumn> Columns,
    IReadOnlyList<ChunkSpec> Chunks,
    long TotalRows)
{
    public SourceColumn? FindColumn(string name) => Columns.FirstOrDefault(c => c.Name == name);
}

/// <summary>A problem found while reading one row, before the model sees it (unparsable value, wrong type).</summary>
public sealed record RowIssue(int Row, string Column, string Reason);

/// <summary>Rows of one chunk, column-wise, plus the row number of its first row within the whole input file.</summary>
public sealed record SourceBatch(ColumnBatch Batch, long FirstRowNumber, IReadOnlyList<RowIssue> Issues);

/// <summary>Input that cannot be read at all (missing file, not Parquet, inconsistent schema): names the file and the problem.</summary>
public sealed class DatasetException(string message, Exception? inner = null) : Exception(message, inner);
