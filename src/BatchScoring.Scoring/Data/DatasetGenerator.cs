namespace BatchScoring.Scoring.Data;

/// <summary>Options for a synthetic scoring dataset: a key, a text passthrough column and float features.</summary>
public sealed record GeneratedDatasetOptions
{
    public long Rows { get; init; } = 100_000;
    public int Features { get; init; } = 64;
    public int RowGroupRows { get; init; } = 50_000;
    public int Seed { get; init; } = 42;
    public string KeyColumn { get; init; } = "customer_id";
    public string PassthroughColumn { get; init; } = "region";
    public long FirstKey { get; init; } = 1;

    /// <summary>Every n-th row gets a NaN in its first feature (0 = none): poison rows for tests and demos.</summary>
    public int NaNEvery { get; init; }

    /// <summary>Added to the first <see cref="ShiftedFeatures"/> features: the same population, drifted (demos, drift tests).</summary>
    public float Shift { get; init; }

    public int ShiftedFeatures { get; init; }

    public static string FeatureName(int index) => $"f_{index:D3}";
}

/// <summary>Writes synthetic Parquet data row group by row group, so memory stays flat whatever the row count.</summary>
public static class DatasetGenerator
{
    private static readonly string[] Regions = ["north", "south", "east", "west"];

    public static IReadOnlyList<SourceColumn> Columns(GeneratedDatasetOptions options) =>
    [
        new(options.KeyColumn, ColumnKind.Int64, false),
        new(options.PassthroughColumn, ColumnKind.String, true),
        .. Enumerable.Range(0, options.Features).Select(i => new SourceColumn(GeneratedDatasetOptions.FeatureName(i), ColumnKind.Float32, false)),
    ];

    public static async Task WriteParquetAsync(string path, GeneratedDatasetOptions options, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetBatchWriter.CreateAsync(path, Columns(options), cancellationToken);
        for (long start = 0; start < options.Rows; start += options.RowGroupRows)
        {
            var count = (int)Math.Min(options.RowGroupRows, options.Rows - start);
            await writer.WriteAsync(CreateBatch(options, start, count), cancellationToken);
        }

        await writer.CompleteAsync(cancellationToken);
    }

    /// <summary>Rows [start, start+count) of the dataset; the same arguments give the same values, in any process.</summary>
    public static ColumnBatch CreateBatch(GeneratedDatasetOptions options, long start, int count)
    {
        // Not HashCode.Combine: it is seeded per process, and a dataset must be the same in every process (demo, bench cache, tests).
        var random = new Random(unchecked((int)(((uint)options.Seed * 2_654_435_761u) ^ (uint)(start * 40_503))));
        var keys = new long[count];
        var regions = new string?[count];
        var features = new float[options.Features][];
        for (var f = 0; f < options.Features; f++)
        {
            features[f] = new float[count];
        }

        for (var i = 0; i < count; i++)
        {
            var row = start + i;
            keys[i] = options.FirstKey + row;
            regions[i] = Regions[row % Regions.Length];
            for (var f = 0; f < options.Features; f++)
            {
                features[f][i] = (float)(random.NextDouble() * 2 - 1) + (f < options.ShiftedFeatures ? options.Shift : 0);
            }

            if (options.NaNEvery > 0 && row % options.NaNEvery == options.NaNEvery - 1)
            {
                features[0][i] = float.NaN;
            }
        }

        var columns = new List<BatchColumn>
        {
            new(options.KeyColumn, ColumnKind.Int64, keys),
            new(options.PassthroughColumn, ColumnKind.String, regions),
        };
        columns.AddRange(features.Select((values, f) => new BatchColumn(GeneratedDatasetOptions.FeatureName(f), ColumnKind.Float32, values)));
        return new ColumnBatch(columns);
    }
}
