namespace BatchScoring.Scoring.Data;

/// <summary>Plans and reads Parquet and CSV inputs chunk by chunk, so memory stays bounded by the chunk size.</summary>
public static class Dataset
{
    public static DatasetFormat DetectFormat(string input)
    {
        var probe = Directory.Exists(input)
            ? Directory.EnumerateFiles(input).Where(IsDataFile).Order(StringComparer.Ordinal).FirstOrDefault()
                ?? throw new DatasetException($"Input directory '{input}' contains no .parquet or .csv files.")
            : input;
        return probe.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? DatasetFormat.Csv : DatasetFormat.Parquet;
    }

    /// <summary>Lists the data files of an input: the file itself, or the directory's .parquet/.csv files in name order.</summary>
    public static IReadOnlyList<string> ListFiles(string input)
    {
        if (File.Exists(input))
        {
            return [Path.GetFullPath(input)];
        }

        if (Directory.Exists(input))
        {
            var files = Directory.EnumerateFiles(input).Where(IsDataFile).Select(Path.GetFullPath).Order(StringComparer.Ordinal).ToArray();
            return files.Length > 0 ? files : throw new DatasetException($"Input directory '{input}' contains no .parquet or .csv files.");
        }

        throw new DatasetException($"Input '{input}' does not exist.");
    }

    /// <summary>Most chunks one input may be planned into (each is a message and a row in scoring.chunks).</summary>
    public const int MaxChunks = 1_000_000;

    public static Task<DatasetPlan> PlanAsync(string input, int chunkRows, CancellationToken cancellationToken) =>
        PlanAsync(input, chunkRows, StorageRoots.Unconfined, cancellationToken);

    /// <summary>Plans the input's chunks; every data file must lie inside <paramref name="roots"/> (a directory may hold links).</summary>
    public static async Task<DatasetPlan> PlanAsync(string input, int chunkRows, StorageRoots roots, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        ArgumentNullException.ThrowIfNull(roots);
        var format = DetectFormat(input);
        var files = ListFiles(input).Select(f => ConfineFile(roots, f)).ToArray();
        IReadOnlyList<SourceColumn>? columns = null;
        var chunks = new List<ChunkSpec>();
        long total = 0;
        foreach (var file in files)
        {
            var (fileColumns, fileChunks, rows) = format == DatasetFormat.Parquet
                ? await ParquetDataset.PlanFileAsync(file, chunkRows, chunks.Count, cancellationToken)
                : await CsvDataset.PlanFileAsync(file, chunkRows, chunks.Count, cancellationToken);
            if (columns is null)
            {
                columns = fileColumns;
            }
            else
            {
                EnsureSameSchema(files[0], columns, file, fileColumns);
            }

            chunks.AddRange(fileChunks);
            total += rows;
            if (chunks.Count > MaxChunks)
            {
                throw new DatasetException($"Input '{input}' would make more than {MaxChunks:N0} chunks; use larger chunks (ChunkRows).");
            }
        }

        return new DatasetPlan(format, columns!, chunks, total);
    }

    /// <summary>The columns of one input file, without planning its chunks (CSV: inferred from the first rows).</summary>
    public static Task<IReadOnlyList<SourceColumn>> ReadColumnsAsync(DatasetFormat format, string path, CancellationToken cancellationToken) =>
        format == DatasetFormat.Sql ? throw NotAFile()
        : format == DatasetFormat.Parquet
            ? ParquetDataset.ReadColumnsAsync(path, cancellationToken)
            : CsvDataset.InferColumnsAsync(path, cancellationToken);

    /// <summary>The columns of one input file, which must lie inside <paramref name="roots"/>.</summary>
    public static Task<IReadOnlyList<SourceColumn>> ReadColumnsAsync(DatasetFormat format, string path, StorageRoots roots, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(roots);
        return ReadColumnsAsync(format, ConfineFile(roots, path), cancellationToken);
    }

    /// <summary>
    /// Reads a chunk whole. A chunk of several ranges is read range by range and concatenated (its
    /// <see cref="SourceBatch.FirstRowNumber"/> is its first range's); to stream one, use <see cref="ReadSlicesAsync(DatasetFormat, ChunkSpec, IReadOnlyList{SourceColumn}, int, StorageRoots, CancellationToken)"/>.
    /// </summary>
    public static async Task<SourceBatch> ReadChunkAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(columns);
        if (chunk.Ranges is not { Count: > 1 } ranges)
        {
            return await ReadOneAsync(format, Checked(chunk.Ranges is { Count: 1 } one ? chunk.ForRange(one[0]) : chunk), columns, cancellationToken);
        }

        var batches = new List<ColumnBatch>(ranges.Count);
        var issues = new List<RowIssue>();
        var rows = 0;
        await foreach (var slice in ReadSlicesAsync(format, chunk, columns, int.MaxValue, cancellationToken))
        {
            batches.Add(slice.Batch);
            issues.AddRange(slice.Issues.Select(i => i with { Row = i.Row + rows }));
            rows += slice.Batch.RowCount;
        }

        return new SourceBatch(ColumnBatch.Concat(batches), chunk.RowStart, issues);
    }

    /// <summary>Reads a chunk whose files must lie inside <paramref name="roots"/> (checked again here: the paths came in a message).</summary>
    public static Task<SourceBatch> ReadChunkAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, StorageRoots roots, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(roots);
        return ReadChunkAsync(format, Confined(roots, chunk), columns, cancellationToken);
    }

    /// <summary>
    /// Streams a chunk in order: one batch per Parquet row group (or part of one) and, for CSV, slices of at most
    /// <paramref name="sliceRows"/> rows; each carries the row number of its first row within its file, and its issues
    /// count rows from its own start. Memory holds one batch at a time, however many ranges the chunk has.
    /// </summary>
    public static IAsyncEnumerable<SourceBatch> ReadSlicesAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, int sliceRows, StorageRoots roots, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(roots);
        return ReadSlicesAsync(format, Confined(roots, chunk), columns, sliceRows, cancellationToken);
    }

    private static IAsyncEnumerable<SourceBatch> ReadSlicesAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, int sliceRows, CancellationToken cancellationToken) =>
        ReadSlicesAsync(format, chunk, columns, sliceRows, (ParquetRowGroupCache?)null, cancellationToken);

    /// <summary><see cref="ReadSlicesAsync(DatasetFormat, ChunkSpec, IReadOnlyList{SourceColumn}, int, StorageRoots, CancellationToken)"/> through a row-group cache and reader pool of its own (tests).</summary>
    internal static async IAsyncEnumerable<SourceBatch> ReadSlicesAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, int sliceRows, ParquetRowGroupCache? rowGroups,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken, ParquetReaderPool? readers = null)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentOutOfRangeException.ThrowIfLessThan(sliceRows, 1);
        // Every range is checked before the first is read: a chunk fails whole, before any of its rows are scored.
        var ranges = chunk.ReadRanges().Select(r => Checked(chunk.ForRange(r))).ToArray();
        if (format == DatasetFormat.Sql)
        {
            throw NotAFile();
        }

        if (format == DatasetFormat.Parquet)
        {
            await foreach (var batch in ParquetDataset.ReadRangesAsync(ranges, columns, rowGroups ?? ParquetRowGroupCache.Shared, cancellationToken, readers))
            {
                yield return batch;
            }

            yield break;
        }

        foreach (var range in ranges)
        {
            await foreach (var slice in CsvDataset.ReadSlicesAsync(range, columns, sliceRows, cancellationToken))
            {
                yield return slice;
            }
        }
    }

    private static Task<SourceBatch> ReadOneAsync(DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken) =>
        format == DatasetFormat.Sql ? throw NotAFile()
            : format == DatasetFormat.Parquet
            ? ParquetDataset.ReadChunkAsync(chunk, columns, cancellationToken)
            : CsvDataset.ReadChunkAsync(chunk, columns, cancellationToken);

    /// <summary>A chunk message may come from anyone who can publish to the queue: check its numbers before they size arrays or seeks.</summary>
    private static ChunkSpec Checked(ChunkSpec chunk) =>
        chunk.RowStart < 0 || chunk.RowCount < 0 || chunk.RowCount > int.MaxValue || chunk.ByteOffset < 0 || chunk.RowGroup is < 0
            ? throw new DatasetException(
                $"Chunk {chunk.Index} of '{chunk.Path}' is invalid (row group {chunk.RowGroup}, rows {chunk.RowStart}+{chunk.RowCount}, byte offset {chunk.ByteOffset}).")
            : chunk;

    private static ChunkSpec Confined(StorageRoots roots, ChunkSpec chunk) =>
        chunk with
        {
            Path = ConfineFile(roots, chunk.Path),
            Ranges = chunk.Ranges?.Select(r => r with { Path = ConfineFile(roots, r.Path) }).ToArray(),
        };

    private static DatasetException NotAFile() => new("A SQL input is read from its source (SqlDataset), not as a file.");

    private static string ConfineFile(StorageRoots roots, string path)
    {
        try
        {
            return roots.Confine(path, "Input file");
        }
        catch (PathNotAllowedException ex)
        {
            throw new DatasetException(ex.Message, ex);
        }
    }

    private static bool IsDataFile(string path) =>
        (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        && !Path.GetFileName(path).StartsWith('.') && !Path.GetFileName(path).StartsWith('_');

    private static void EnsureSameSchema(string firstFile, IReadOnlyList<SourceColumn> expected, string file, IReadOnlyList<SourceColumn> actual)
    {
        foreach (var column in expected)
        {
            var other = actual.FirstOrDefault(c => c.Name == column.Name)
                ?? throw new DatasetException(
                    $"File '{file}' lacks column {Position(expected, column)} of '{firstFile}'; the files of one input directory must have the same columns.");
            if (other.Kind != column.Kind)
            {
                // Both files have this column, so naming it tells nothing that is not in either.
                throw new DatasetException($"Column '{column.Name}' is {other.Kind} in '{file}' but {column.Kind} in '{firstFile}'.");
            }
        }

        // Names of the first file are not quoted: an error must not echo a file's contents.
        static string Position(IReadOnlyList<SourceColumn> columns, SourceColumn column) =>
            $"{columns.ToList().IndexOf(column) + 1} of {columns.Count}";
    }
}
