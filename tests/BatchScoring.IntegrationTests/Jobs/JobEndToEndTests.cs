using System.Net;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Outputs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;
using Parquet;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>Whole jobs through the HTTP API, RabbitMQ, the worker and PostgreSQL COPY / Parquet.</summary>
public sealed class JobEndToEndTests(ServerFixture servers)
{
    private const int Features = 8;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Job_scores_every_row_once_records_poison_rows_and_writes_table_and_parquet()
    {
        // ONNX Runtime runs each 700-row batch in slices of 256 rows (BatchScoring:CpuRowsPerRun): scores are checked below.
        await using var host = await ServiceTestHost.StartAsync(
            servers, "e2e", ServiceRoles.All, Ct, new Dictionary<string, string> { ["BatchScoring:CpuRowsPerRun"] = "256" });
        var mlp = SampleModels.Mlp([Features, 16, 16, 1], seed: 3, featureNames: FeatureNames());
        await host.RegisterModelAsync("churn", mlp.Bytes, Ct);
        var data = new GeneratedDatasetOptions { Rows = 12_000, Features = Features, RowGroupRows = 5_000, NaNEvery = 1_000, Seed = 11 };
        var input = Path.Combine(host.WorkDir, "input.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var parquetOut = Path.Combine(host.WorkDir, "out");

        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn",
            Input = input,
            KeyColumn = "customer_id",
            Passthrough = ["region"],
            OutputTable = "scoring.results_churn",
            OutputParquet = parquetOut,
            ChunkRows = 1_000,
            BatchRows = 700,
        }, Ct);

        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        // Row groups of 5000 and 5000 (over 4 × 1000 rows: split at 1000) and 2000 (kept whole): 5 + 5 + 1.
        Assert.Equal(11, submitted!.ChunksTotal);
        var final = await host.WaitForEndAsync(submitted.Id, TimeSpan.FromMinutes(2), Ct);

        Assert.Equal("succeeded", final.State);
        Assert.Equal(12_000, final.TotalRows);
        Assert.Equal(12, final.FailedRows); // one NaN row per 1000
        Assert.Equal(11_988, final.ScoredRows);
        Assert.Equal(1, final.ModelVersion);
        Assert.Contains(final.FailureSummary, f => f.Reason.Contains("f_000", StringComparison.Ordinal) && f.Count == 12);

        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        var scores = new Dictionary<long, (float Score, string Region, int Version)>();
        await using (var cmd = db.CreateCommand("SELECT customer_id, score, region, model_version FROM scoring.results_churn WHERE job_id = $1"))
        {
            cmd.Parameters.AddWithValue(submitted.Id);
            await using var reader = await cmd.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                Assert.True(scores.TryAdd(reader.GetInt64(0), (reader.GetFloat(1), reader.GetString(2), reader.GetInt32(3))), $"key {reader.GetInt64(0)} written twice");
            }
        }

        Assert.Equal(11_988, scores.Count);

        // Lineage as the README documents it: each row's model name and version lead to the SHA-256 of the bytes scored.
        await using (var cmd = db.CreateCommand(
            "SELECT DISTINCT v.sha256 FROM scoring.results_churn r JOIN scoring.model_versions v ON v.model_name = r.model_name AND v.version = r.model_version WHERE r.job_id = $1"))
        {
            cmd.Parameters.AddWithValue(submitted.Id);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(mlp.Bytes)), await cmd.ExecuteScalarAsync(Ct));
        }
        for (long start = 0; start < data.Rows; start += data.RowGroupRows)
        {
            var batch = DatasetGenerator.CreateBatch(data, start, (int)Math.Min(data.RowGroupRows, data.Rows - start));
            var keys = batch["customer_id"].As<long>();
            for (var i = 0; i < batch.RowCount; i++)
            {
                var x = Enumerable.Range(0, Features).Select(f => batch[GeneratedDatasetOptions.FeatureName(f)].As<float>()[i]).ToArray();
                if (float.IsNaN(x[0]))
                {
                    Assert.False(scores.ContainsKey(keys[i]), $"poison row {keys[i]} was scored");
                    continue;
                }

                var (score, region, version) = scores[keys[i]];
                Assert.Equal(MlpReference.Forward(mlp, x)[0], score, 1e-4f);
                Assert.Equal(batch["region"].As<string>()[i], region);
                Assert.Equal(1, version);
            }
        }

        await using (var cmd = db.CreateCommand("SELECT row_key, column_name, reason FROM scoring.failed_rows WHERE job_id = $1 ORDER BY row_number"))
        {
            cmd.Parameters.AddWithValue(submitted.Id);
            await using var reader = await cmd.ExecuteReaderAsync(Ct);
            var failedKeys = new List<string>();
            while (await reader.ReadAsync(Ct))
            {
                failedKeys.Add(reader.GetString(0));
                Assert.Equal("f_000", reader.GetString(1));
                Assert.Contains("NaN", reader.GetString(2), StringComparison.Ordinal);
            }

            Assert.Equal(Enumerable.Range(1, 12).Select(k => (k * 1000).ToString(System.Globalization.CultureInfo.InvariantCulture)), failedKeys);
        }

        // Parquet: one part per chunk, no temporary files left, and a manifest written last that adds up.
        var files = Directory.GetFiles(parquetOut).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 11).Select(i => $"part-{i:D6}.parquet").Append("_SUCCESS").Order(), files);
        long parquetRows = 0;
        foreach (var part in Directory.GetFiles(parquetOut, "part-*.parquet"))
        {
            await using var reader = await ParquetReader.CreateAsync(part, cancellationToken: Ct);
            parquetRows += reader.RowGroups.Sum(g => g.RowCount);
        }

        Assert.Equal(11_988, parquetRows);
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(parquetOut, "_SUCCESS"), Ct));
        Assert.Equal(11_988, manifest.RootElement.GetProperty("scoredRows").GetInt64());
        Assert.Equal(11, manifest.RootElement.GetProperty("parts").GetArrayLength());
        Assert.Equal(
            ["customer_id", "region", "score", "job_id", "model_name", "model_version", "scored_at"],
            manifest.RootElement.GetProperty("schema").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(mlp.Bytes));
        Assert.Equal(11_988, await SuccessManifestAssert.VerifyAsync(parquetOut, submitted.Id, "churn", 1, sha256, Ct));

        // The check sees a part changed after the manifest was written (same size, one byte different).
        var changed = Path.Combine(parquetOut, "part-000003.parquet");
        var bytes = await File.ReadAllBytesAsync(changed, Ct);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(changed, bytes, Ct);
        var mismatch = await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(() => SuccessManifestAssert.VerifyAsync(parquetOut, submitted.Id, "churn", 1, sha256, Ct));
        Assert.Contains(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), mismatch.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_submissions_are_rejected_with_the_problem_named_and_idempotency_key_dedupes()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "invalid", ServiceRoles.All, Ct);
        var mlp = SampleModels.Mlp([Features, 4, 1], seed: 5);
        await host.RegisterModelAsync("risk", mlp.Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 100, Features = Features, RowGroupRows = 100 }, Ct);
        var good = new SubmitScoringJob { Model = "risk", Input = input, KeyColumn = "customer_id", OutputTable = "risk_scores" };

        async Task AssertRejected(SubmitScoringJob request, params string[] expected)
        {
            var (response, _, body) = await host.SubmitAsync(request, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            foreach (var text in expected)
            {
                Assert.Contains(text, body, StringComparison.Ordinal);
            }
        }

        await AssertRejected(good with { Model = "nope" }, "Model 'nope' is not registered");
        await AssertRejected(good with { ModelVersion = "production" }, "no version or alias 'production'");
        await AssertRejected(good with { Input = Path.Combine(host.WorkDir, "missing.parquet") }, "missing.parquet", "does not exist");
        await AssertRejected(good with { KeyColumn = "cust" }, "Key column 'cust'");
        await AssertRejected(good with { Features = ["f_000", "f_001", "bogus"] }, "bogus");
        await AssertRejected(good with { OutputTable = "results; drop table x" }, "OutputTable");
        await AssertRejected(good with { OutputTable = null }, "$.outputTable", "outputParquet");

        // A version may be sent as a JSON number as well as a string.
        using (var numeric = await host.Client.PostAsync("/api/jobs", new StringContent(
            $$"""{"model":"risk","modelVersion":1,"input":{{System.Text.Json.JsonSerializer.Serialize(input)}},"keyColumn":"customer_id","outputTable":"risk_scores"}""",
            System.Text.Encoding.UTF8, "application/json"), Ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, numeric.StatusCode);
        }

        var first = await host.SubmitAsync(good with { IdempotencyKey = "nightly-2026-11-23" }, Ct);
        var again = await host.SubmitAsync(good with { IdempotencyKey = "nightly-2026-11-23" }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, first.Response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.Response.StatusCode);
        Assert.Equal(first.Status!.Id, again.Status!.Id);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(first.Status.Id, TimeSpan.FromMinutes(1), Ct)).State);
    }

    [Fact]
    public async Task Job_fails_past_its_error_threshold_and_keeps_what_it_scored()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "threshold", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 4, 1], seed: 9).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 1_000, Features = Features, RowGroupRows = 500, NaNEvery = 10 }, Ct);

        var (_, submitted, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "t_results", MaxFailedPercent = 5 }, Ct);
        Assert.NotNull(submitted);
        var final = await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(1), Ct);

        Assert.Equal("failed", final.State);
        Assert.Equal(100, final.FailedRows);
        Assert.Equal(900, final.ScoredRows);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT count(*) FROM scoring.t_results");
        Assert.Equal(900L, (long)(await count.ExecuteScalarAsync(Ct))!);
    }

    private static string[] FeatureNames() => Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
}

/// <summary>The sample MLP computed in plain C#: Gemm + ReLU hidden layers, Gemm + sigmoid output.</summary>
internal static class MlpReference
{
    public static float[] Forward(MlpModel model, float[] input)
    {
        var x = input.Select(v => (double)v).ToArray();
        for (var layer = 0; layer < model.Weights.Count; layer++)
        {
            var inSize = model.LayerSizes[layer];
            var outSize = model.LayerSizes[layer + 1];
            var y = new double[outSize];
            for (var o = 0; o < outSize; o++)
            {
                double sum = model.Biases[layer][o];
                for (var i = 0; i < inSize; i++)
                {
                    sum += model.Weights[layer][(o * inSize) + i] * x[i];
                }

                y[o] = layer == model.Weights.Count - 1 ? 1 / (1 + Math.Exp(-sum)) : Math.Max(0, sum);
            }

            x = y;
        }

        return x.Select(v => (float)v).ToArray();
    }
}
