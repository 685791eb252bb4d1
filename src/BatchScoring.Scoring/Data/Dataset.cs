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

    public static async Task<DatasetPlan> PlanAsync(string input, int chunkRows, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        var format = DetectFormat(input);
        var files = ListFiles(input);
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
        }

        return new DatasetPlan(format, columns!, chunks, total);
    }

    /// <summary>The columns of one input file, without planning its chunks (CSV: inferred from the first rows).</summary>
    public static Task<IReadOnlyList<SourceColumn>> ReadColumnsAsync(DatasetFormat format, string path, CancellationToken cancellationToken) =>
        format == DatasetFormat.Parquet
            ? ParquetDataset.ReadColumnsAsync(path, cancellationToken)
            : CsvDataset.InferColumnsAsync(path, cancellationToken);

    public static Task<SourceBatch> ReadChunkAsync(
        DatasetFormat format, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken) =>
        format == DatasetFormat.Parquet
            ? ParquetDataset.ReadChunkAsync(chunk, columns, cancellationToken)
            : CsvDataset.ReadChunkAsync(chunk, columns, cancellationToken);

    private static bool IsDataFile(string path) =>
        (path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        && !Path.GetFileName(path).StartsWith('.') && !Path.GetFileName(path).StartsWith('_');

    private static void EnsureSameSchema(string firstFile, IReadOnlyList<SourceColumn> expected, string file, IReadOnlyList<SourceColumn> actual)
    {
        foreach (var column in expected)
        {
            var other = actual.FirstOrDefault(c => c.Name == column.Name)
                ?? throw new DatasetException($"File '{file}' has no column '{column.Name}' (present in '{firstFile}').");
            if (other.Kind != column.Kind)
            {
                throw new DatasetException($"Column '{column.Name}' is {other.Kind} in '{file}' but {column.Kind} in '{firstFile}'.");
            }
        }
    }
}
