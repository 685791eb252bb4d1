using BatchScoring.Scoring.Data;

namespace BatchScoring.Benchmarks.Tests;

/// <summary>The dataset variants: option parsing, and files written by DuckDB read back by the service's own reader.</summary>
public sealed class DatasetVariantTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-bench-variants-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Variants_are_parsed_in_the_order_given_and_unknown_or_repeated_names_are_refused()
    {
        var (variants, error) = DatasetVariant.Parse(" csv,RG8K ,gen");
        Assert.Null(error);
        Assert.NotNull(variants);
        Assert.Equal(["csv", "rg8k", "gen"], variants.Select(v => v.Name));
        Assert.Equal(8_192, variants[1].RowGroupRows);

        Assert.Contains("unknown variant 'rg4k'", DatasetVariant.Parse("rg8k,rg4k").Error!, StringComparison.Ordinal);
        Assert.Contains("given twice", DatasetVariant.Parse("csv,csv").Error!, StringComparison.Ordinal);
        Assert.NotNull(DatasetVariant.Parse(" , ").Error);
        Assert.Null(DatasetVariant.Parse(DatasetVariant.DefaultList).Error);
    }

    [Theory]
    [InlineData("rg8k", 3L, 8_192L)]
    [InlineData("rg16k", 2L, 16_384L)]
    [InlineData("csv", null, null)]
    public async Task A_file_DuckDB_writes_has_the_asked_row_groups_and_the_services_reader_reads_every_row_of_it(string name, long? rowGroups, long? largest)
    {
        var basePath = Path.Combine(_dir, "base", "data.parquet");
        await DatasetGenerator.WriteParquetAsync(basePath, new GeneratedDatasetOptions { Rows = 20_000, Features = 4, RowGroupRows = 20_000 }, Ct);
        var variant = DatasetVariant.Known.Single(v => v.Name == name);

        var path = DuckDbFiles.Ensure(variant, basePath);

        if (rowGroups is not null)
        {
            var (count, _, max) = DuckDbFiles.RowGroups(path);
            Assert.Equal(rowGroups, count);
            Assert.Equal(largest, max);
        }

        var (rows, _) = await DuckDbFiles.CheckReadableAsync(path, 5_000, Ct);
        Assert.Equal(20_000, rows);
        var (expectedKeys, expectedFeature) = await SumsAsync(basePath);
        var (keys, feature) = await SumsAsync(path);
        Assert.Equal(expectedKeys, keys);
        Assert.Equal(expectedFeature, feature, 1e-3); // CSV holds the floats' shortest decimal text, read back as doubles
    }

    [Fact]
    public async Task The_large_job_file_repeats_the_rows_with_keys_that_stay_unique()
    {
        var basePath = Path.Combine(_dir, "base", "data.parquet");
        await DatasetGenerator.WriteParquetAsync(basePath, new GeneratedDatasetOptions { Rows = 3_000, Features = 2, RowGroupRows = 3_000 }, Ct);

        var path = DuckDbFiles.Ensure(DatasetVariant.Known.Single(v => v.Name == "rg16k"), basePath, repeat: 3);

        var keys = new HashSet<long>();
        var plan = await Dataset.PlanAsync(path, 4_000, Ct);
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, [plan.FindColumn("customer_id")!], Ct)).Batch;
            foreach (var key in batch["customer_id"].As<long>())
            {
                Assert.True(keys.Add(key), $"key {key} repeated");
            }
        }

        Assert.Equal(9_000, keys.Count);
    }

    /// <summary>Σ key and Σ first feature over every chunk, read with the service's reader.</summary>
    private static async Task<(long Keys, double Feature)> SumsAsync(string path)
    {
        var plan = await Dataset.PlanAsync(path, 5_000, Ct);
        long keys = 0;
        double feature = 0;
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, Ct)).Batch;
            var keyColumn = batch["customer_id"];
            var featureColumn = batch[GeneratedDatasetOptions.FeatureName(0)];
            for (var i = 0; i < batch.RowCount; i++)
            {
                keys += Convert.ToInt64(keyColumn.Values.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
                feature += Convert.ToDouble(featureColumn.Values.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return (keys, feature);
    }
}
