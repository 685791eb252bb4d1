using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>`batchscore score` as a user runs it: a separate process, a model file and a Parquet file in, Parquet out.</summary>
public sealed class ScoreCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-cli-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Score_streams_a_file_through_the_model_and_reports_poison_rows()
    {
        var mlp = SampleModels.Mlp([6, 8, 1], seed: 12);
        var model = Path.Combine(_dir, "m.onnx");
        await File.WriteAllBytesAsync(model, mlp.Bytes, Ct);
        var data = new GeneratedDatasetOptions { Rows = 5_000, Features = 6, RowGroupRows = 1_500, NaNEvery = 1_000 };
        var input = Path.Combine(_dir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var output = Path.Combine(_dir, "scored.parquet");

        var (exit, stderr) = await RunAsync("score", "--model", model, "--input", input, "--output", output,
            "--key-column", "customer_id", "--passthrough", "region", "--chunk-rows", "1000", "--batch-rows", "300");

        Assert.True(exit == 0, stderr);
        var plan = await Dataset.PlanAsync(output, 100_000, Ct);
        Assert.Equal(["customer_id", "region", "score"], plan.Columns.Select(c => c.Name));
        var scored = new Dictionary<long, float>();
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, Ct)).Batch;
            var keys = batch["customer_id"].As<long>();
            var scores = batch["score"].As<float>();
            for (var i = 0; i < keys.Length; i++)
            {
                scored.Add(keys[i], scores[i]);
            }
        }

        Assert.Equal(4_995, scored.Count);
        var sample = DatasetGenerator.CreateBatch(data, 1_500, 1_500);
        for (var i = 0; i < sample.RowCount; i++)
        {
            var x = Enumerable.Range(0, 6).Select(f => sample[GeneratedDatasetOptions.FeatureName(f)].As<float>()[i]).ToArray();
            var key = sample["customer_id"].As<long>()[i];
            if (float.IsNaN(x[0]))
            {
                Assert.DoesNotContain(key, scored.Keys);
            }
            else
            {
                Assert.Equal(MlpReference.Forward(mlp, x)[0], scored[key], 1e-5f);
            }
        }

        var failed = await File.ReadAllLinesAsync(Path.ChangeExtension(output, ".failed.csv"), Ct);
        Assert.Equal(6, failed.Length); // header + 5 poison rows
        Assert.Contains("1000,f_000", failed[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Score_names_the_missing_column_and_exits_non_zero()
    {
        var model = Path.Combine(_dir, "m.onnx");
        await File.WriteAllBytesAsync(model, SampleModels.Mlp([6, 1], seed: 1).Bytes, Ct);
        var input = Path.Combine(_dir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 10, Features = 5, RowGroupRows = 10 }, Ct);

        var (exit, stderr) = await RunAsync("score", "--model", model, "--input", input, "--output", Path.Combine(_dir, "o.parquet"), "--key-column", "nope");

        Assert.NotEqual(0, exit);
        Assert.Contains("'nope'", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "o.parquet")));
    }

    private static async Task<(int Exit, string Stderr)> RunAsync(params string[] args)
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(Ct, args);
        return (exit, stderr);
    }
}
