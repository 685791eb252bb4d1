using System.Net;
using System.Net.Http.Json;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Outputs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Npgsql;
using Parquet;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// Champion / challenger jobs (docs/challenger.md): both versions score every row in one pass, each into its own table
/// and Parquet folder in the chunk's commit; the comparison is checked against separate ONNX sessions run by the test.
/// </summary>
public sealed class ChallengerJobTests(ServerFixture servers)
{
    private const int Features = 4;
    private static readonly string[] FeatureColumns = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_challenger_job_writes_both_tables_once_and_its_comparison_matches_independent_sessions()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "challenger", ServiceRoles.All, Ct);
        var (champion, challenger) = await RegisterPairAsync(host);
        var data = new GeneratedDatasetOptions { Rows = 5_000, Features = Features, RowGroupRows = 2_000, Seed = 21 };
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var parquetOut = Path.Combine(host.WorkDir, "out");

        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn",
            ModelVersion = "1",
            Challenger = "churn@staging",
            Input = input,
            KeyColumn = "customer_id",
            Passthrough = ["region"],
            Features = FeatureColumns,
            OutputTable = "scoring.cc_results",
            OutputParquet = parquetOut,
            ChunkRows = 1_000,
            BatchRows = 300,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("churn", submitted!.Challenger!.Model);
        Assert.Equal(2, submitted.Challenger.ModelVersion);
        Assert.Equal("scoring.cc_results_challenger", submitted.Challenger.OutputTable);

        var final = await host.WaitForEndAsync(submitted.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(5_000, final.ScoredRows);

        // Both tables: every key exactly once, each version's scores equal to its own independent session's.
        var expectedChampion = Score(champion.Bytes, data);
        var expectedChallenger = Score(challenger.Bytes, data);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        var championRows = await ReadResultsAsync(db, "scoring.cc_results", submitted.Id, expectedVersion: 1);
        var challengerRows = await ReadResultsAsync(db, "scoring.cc_results_challenger", submitted.Id, expectedVersion: 2);
        Assert.Equal(5_000, championRows.Count);
        Assert.Equal(5_000, challengerRows.Count);
        foreach (var (key, expected) in expectedChallenger)
        {
            Assert.Equal(expected.Label, challengerRows[key].Label);
            Assert.Equal(expected.P2, challengerRows[key].P2, 1e-6f);
            Assert.Equal(expectedChampion[key].Label, championRows[key].Label);
            Assert.Equal(expectedChampion[key].P2, championRows[key].P2, 1e-6f);
        }

        // The comparison, computed here from the independent sessions: agreement of labels, nearest-rank quantiles of |p2 - p2'|.
        var agreed = expectedChampion.Count(kv => kv.Value.Label == expectedChallenger[kv.Key].Label);
        var diffs = expectedChampion.Select(kv => Math.Abs((double)kv.Value.P2 - expectedChallenger[kv.Key].P2)).Order().ToArray();
        var comparison = final.Challenger!.Comparison!;
        Assert.True(comparison.Final);
        Assert.Equal(5_000, comparison.RowsCompared);
        Assert.Equal(0, comparison.ChallengerFailedRows);
        Assert.InRange(agreed, 1, 4_999); // the two versions disagree on some rows, so agreement is a real measurement
        Assert.Equal(agreed / 5_000.0, comparison.AgreementRate!.Value, 1e-12);
        var difference = comparison.ScoreDifference!;
        Assert.Equal("probability_2", difference.ChampionColumn);
        AssertQuantile(NearestRank(diffs, 0.5), difference.P50);
        AssertQuantile(NearestRank(diffs, 0.9), difference.P90);
        AssertQuantile(NearestRank(diffs, 0.99), difference.P99);
        Assert.Equal(diffs[^1], difference.Max, 1e-9);
        Assert.Null(comparison.RealisedMetrics); // no labels yet

        // The stored comparison says the same (the finisher stores it just after marking the job ended).
        await Poll.UntilAsync(
            async () =>
            {
                await using var stored = db.CreateCommand("SELECT count(*) FROM scoring.challenger_comparisons WHERE job_id = $1");
                stored.Parameters.AddWithValue(submitted.Id);
                return (long)(await stored.ExecuteScalarAsync(Ct))! == 1;
            },
            TimeSpan.FromSeconds(30), "the comparison is stored", Ct);
        await using (var cmd = db.CreateCommand(
            "SELECT rows_compared, agreement_rate, diff_p99, diff_max, challenger_version FROM scoring.challenger_comparisons WHERE job_id = $1"))
        {
            cmd.Parameters.AddWithValue(submitted.Id);
            await using var reader = await cmd.ExecuteReaderAsync(Ct);
            Assert.True(await reader.ReadAsync(Ct));
            Assert.Equal(5_000, reader.GetInt64(0));
            Assert.Equal(agreed / 5_000.0, reader.GetDouble(1), 1e-12);
            AssertQuantile(NearestRank(diffs, 0.99), reader.GetDouble(2));
            Assert.Equal(diffs[^1], reader.GetDouble(3), 1e-9);
            Assert.Equal(2, reader.GetInt32(4));
        }

        // Labels arrive after the job: the status then shows each version's realised accuracy, counted here by hand.
        var random = new Random(5);
        var labels = expectedChampion.Keys.Order().Take(2_000).ToDictionary(k => k, _ => (long)random.Next(3));
        var labelsCsv = Path.Combine(host.WorkDir, "labels.csv");
        await File.WriteAllLinesAsync(labelsCsv, ["customer_id,churned", .. labels.Select(kv => $"{kv.Key},{kv.Value}")], Ct);
        using (var ingest = await host.Client.PostAsJsonAsync(
            "/api/models/churn/labels", new { input = labelsCsv, keyColumn = "customer_id", labelColumn = "churned" }, ServiceTestHost.Json, Ct))
        {
            Assert.True(ingest.IsSuccessStatusCode, await ingest.Content.ReadAsStringAsync(Ct));
        }

        var realised = (await host.GetStatusAsync(submitted.Id, Ct)).Challenger!.Comparison!.RealisedMetrics!;
        var championRealised = Assert.Single(realised, m => m.Role == "champion");
        var challengerRealised = Assert.Single(realised, m => m.Role == "challenger");
        Assert.Equal(2_000, championRealised.LabelledRows);
        Assert.Equal(2_000, challengerRealised.LabelledRows);
        Assert.Equal(labels.Count(kv => expectedChampion[kv.Key].Label == kv.Value) / 2_000.0, championRealised.Accuracy!.Value, 1e-12);
        Assert.Equal(labels.Count(kv => expectedChallenger[kv.Key].Label == kv.Value) / 2_000.0, challengerRealised.Accuracy!.Value, 1e-12);

        // Parquet: the champion's parts where they always are, the challenger's under challenger/ with its own manifest.
        var challengerDir = Path.Combine(parquetOut, "challenger");
        Assert.Equal(final.ChunksTotal, Directory.GetFiles(parquetOut, "part-*.parquet").Length);
        Assert.Equal(final.ChunksTotal, Directory.GetFiles(challengerDir, "part-*.parquet").Length);
        // The challenger's manifest is written just after its comparison is stored.
        await Poll.UntilAsync(() => File.Exists(Path.Combine(challengerDir, "_SUCCESS")), TimeSpan.FromSeconds(30), "challenger/_SUCCESS is written", Ct);
        Assert.Equal(5_000, await SuccessManifestAssert.VerifyAsync(
            challengerDir, submitted.Id, "churn", 2, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(challenger.Bytes)), Ct));
        Assert.Equal(5_000, await SuccessManifestAssert.VerifyAsync(
            parquetOut, submitted.Id, "churn", 1, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(champion.Bytes)), Ct));
        Assert.Equal(5_000, await CountParquetRowsAsync(challengerDir));
    }

    [Fact]
    public async Task A_redelivered_chunk_writes_neither_table_nor_comparison_twice()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "challenger_redeliver", ServiceRoles.Api, Ct);
        await RegisterPairAsync(host);
        var data = new GeneratedDatasetOptions { Rows = 1_200, Features = Features, RowGroupRows = 400, Seed = 5 };
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", ModelVersion = "1", Challenger = "churn@2", Input = input, KeyColumn = "customer_id",
            Features = FeatureColumns, OutputTable = "redelivered", ChunkRows = 400,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);

        // No worker role: each chunk is delivered twice at once by hand (one commits, one finds it done), then once more.
        var chunks = await host.Services.GetRequiredService<JobStore>().GetChunksAsync(submitted!.Id, Ct);
        Assert.Equal(3, chunks.Count);
        foreach (var chunk in chunks)
        {
            var outcomes = await Task.WhenAll(ScoreChunkAsync(host, chunk), ScoreChunkAsync(host, chunk));
            Assert.Equal([ChunkOutcome.Committed, ChunkOutcome.AlreadyDone], outcomes.Order());
        }

        foreach (var chunk in chunks)
        {
            Assert.Equal(ChunkOutcome.AlreadyDone, await ScoreChunkAsync(host, chunk));
        }

        var final = await host.GetStatusAsync(submitted.Id, Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        Assert.Equal(1_200, (await ReadResultsAsync(db, "scoring.redelivered", submitted.Id, 1)).Count);
        Assert.Equal(1_200, (await ReadResultsAsync(db, "scoring.redelivered_challenger", submitted.Id, 2)).Count);
        Assert.Equal(1_200, final.Challenger!.Comparison!.RowsCompared);
        await using var stats = db.CreateCommand("SELECT count(*), sum(rows_compared) FROM scoring.challenger_chunk_stats WHERE job_id = $1");
        stats.Parameters.AddWithValue(submitted.Id);
        await using var reader = await stats.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        Assert.Equal(3, reader.GetInt64(0));
        Assert.Equal(1_200m, reader.GetDecimal(1));
    }

    [Fact]
    public async Task A_challenger_with_other_inputs_is_refused_at_submit_naming_both_versions_and_the_difference()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "challenger_refused", ServiceRoles.Api, Ct);
        await RegisterPairAsync(host);
        await host.RegisterModelAsync("churn", SampleModels.TreeEnsembleClassifier(featureCount: Features + 1, seed: 3).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 50, Features = Features + 1, RowGroupRows = 50 }, Ct);
        var request = new SubmitScoringJob
        {
            Model = "churn", ModelVersion = "1", Challenger = "churn@3", Input = input, KeyColumn = "customer_id",
            Features = FeatureColumns, OutputTable = "refused",
        };

        var (response, _, body) = await host.SubmitAsync(request, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Challenger 'churn' v3 is not signature-compatible with model 'churn' v1", body, StringComparison.Ordinal);
        Assert.Contains("input 'input' is float[N, 4] in 'churn' v1 but float[N, 5] in 'churn' v3", body, StringComparison.Ordinal);
        (response, _, body) = await host.SubmitAsync(request with { Challenger = "churn@nope" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Challenger", body, StringComparison.Ordinal);
        Assert.Contains("nope", body, StringComparison.Ordinal);

        // Nothing was recorded or created for the refused jobs.
        Assert.Empty(await host.Client.GetFromJsonAsync<List<JobStatus>>("/api/jobs", ServiceTestHost.Json, Ct) ?? []);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var exists = db.CreateCommand("SELECT to_regclass('scoring.refused') IS NULL AND to_regclass('scoring.refused_challenger') IS NULL");
        Assert.True((bool)(await exists.ExecuteScalarAsync(Ct))!);
    }

    /// <summary>v1 and v2 of "churn": 3-class tree ensembles over the same [N, 4] input, different trees; alias staging → v2.</summary>
    private static async Task<(TreeEnsembleModel Champion, TreeEnsembleModel Challenger)> RegisterPairAsync(ServiceTestHost host)
    {
        var champion = SampleModels.TreeEnsembleClassifier(featureCount: Features, treeCount: 3, seed: 1);
        var challenger = SampleModels.TreeEnsembleClassifier(featureCount: Features, treeCount: 4, seed: 2);
        await host.RegisterModelAsync("churn", champion.Bytes, Ct);
        await host.RegisterModelAsync("churn", challenger.Bytes, Ct);
        using var alias = await host.Client.PutAsJsonAsync("/api/models/churn/aliases/staging", new { version = 2 }, Ct);
        Assert.True(alias.IsSuccessStatusCode, await alias.Content.ReadAsStringAsync(Ct));
        return (champion, challenger);
    }

    /// <summary>Label and probability of class 2 per key, from a plain ONNX Runtime session over all rows at once.</summary>
    private static Dictionary<long, (long Label, float P2)> Score(byte[] model, GeneratedDatasetOptions data)
    {
        // As the file was written: one generated batch per row group.
        var groups = new List<ColumnBatch>();
        for (long start = 0; start < data.Rows; start += data.RowGroupRows)
        {
            groups.Add(DatasetGenerator.CreateBatch(data, start, (int)Math.Min(data.RowGroupRows, data.Rows - start)));
        }

        var batch = ColumnBatch.Concat(groups);
        var n = batch.RowCount;
        var x = new float[n * Features];
        for (var f = 0; f < Features; f++)
        {
            var column = batch[FeatureColumns[f]].As<float>();
            for (var i = 0; i < n; i++)
            {
                x[(i * Features) + f] = column[i];
            }
        }

        using var session = new InferenceSession(model);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x, [n, Features]))]);
        var labels = results.First(r => r.Name == "label").AsTensor<long>().ToArray();
        var maps = results.First(r => r.Name == "probabilities").AsEnumerable<NamedOnnxValue>().Select(m => m.AsDictionary<long, float>()).ToArray();
        var keys = batch["customer_id"].As<long>();
        return Enumerable.Range(0, n).ToDictionary(i => keys[i], i => (labels[i], maps[i][2]));
    }

    private static async Task<Dictionary<long, (long Label, float P2)>> ReadResultsAsync(NpgsqlDataSource db, string table, Guid jobId, int expectedVersion)
    {
        var rows = new Dictionary<long, (long, float)>();
        await using var cmd = db.CreateCommand($"SELECT customer_id, label, probability_2, model_version FROM {table} WHERE job_id = $1");
        cmd.Parameters.AddWithValue(jobId);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            Assert.True(rows.TryAdd(reader.GetInt64(0), (reader.GetInt64(1), reader.GetFloat(2))), $"key {reader.GetInt64(0)} written twice to {table}");
            Assert.Equal(expectedVersion, reader.GetInt32(3));
        }

        return rows;
    }

    private static Task<ChunkOutcome> ScoreChunkAsync(ServiceTestHost host, ChunkEntity chunk) => Task.Run(async () =>
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ChunkScorer>().ScoreAsync(
            ChunkRanges.ToMessage(chunk), Ct);
    });

    private static async Task<long> CountParquetRowsAsync(string folder)
    {
        long rows = 0;
        foreach (var part in Directory.GetFiles(folder, "part-*.parquet"))
        {
            await using var reader = await ParquetReader.CreateAsync(part, cancellationToken: Ct);
            rows += reader.RowGroups.Sum(g => g.RowCount);
        }

        return rows;
    }

    /// <summary>The ⌈q·n⌉-th smallest value.</summary>
    private static double NearestRank(double[] sorted, double q) => sorted[Math.Max(1, (int)Math.Ceiling(q * sorted.Length)) - 1];

    /// <summary>The service's quantiles are within 0.5% of the exact ones (its histogram's accuracy).</summary>
    private static void AssertQuantile(double exact, double actual) =>
        Assert.True(Math.Abs(actual - exact) <= (0.0051 * exact) + 1e-9, $"quantile {actual} is not within 0.5% of the exact {exact}");
}
