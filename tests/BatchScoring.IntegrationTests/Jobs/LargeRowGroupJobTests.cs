using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Parquet;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// Row groups larger than the chunk size (docs/chunks.md): up to 4 × the chunk size a row group is one chunk, scored in
/// batches; beyond, it is cut into pieces. Either way every key is written once with the score the model gives.
/// </summary>
public sealed class LargeRowGroupJobTests(ServerFixture servers)
{
    private const int Features = 6;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly GeneratedDatasetOptions Data = new() { Rows = 30_000, Features = Features, RowGroupRows = 10_000, NaNEvery = 3_000, Seed = 23 };

    [Fact]
    public async Task Row_groups_kept_whole_or_cut_into_pieces_give_every_row_its_score_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "largegroups", ServiceRoles.All, Ct);
        var mlp = SampleModels.Mlp([Features, 8, 1], seed: 5, featureNames: [.. Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName)]);
        await host.RegisterModelAsync("large_groups", mlp.Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "large-groups.parquet");
        await DatasetGenerator.WriteParquetAsync(input, Data, Ct);
        var parquetOut = Path.Combine(host.WorkDir, "out");

        // 10,000-row groups at 3,000-row chunks (bound 12,000): one chunk per row group, scored 1,000 rows at a time.
        var whole = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "large_groups", Input = input, KeyColumn = "customer_id", OutputTable = "whole_groups",
            OutputParquet = parquetOut, ChunkRows = 3_000, BatchRows = 1_000,
        });
        Assert.Equal(3, whole.ChunksTotal);
        Assert.Equal([10_000L, 10_000, 10_000], (await ChunksAsync(host, whole.Id)).Select(c => c.RowCount));

        // At 2,000-row chunks (bound 8,000) each row group is cut into five 2,000-row pieces.
        var pieces = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "large_groups", Input = input, KeyColumn = "customer_id", OutputTable = "group_pieces", ChunkRows = 2_000, BatchRows = 700,
        });
        Assert.Equal(15, pieces.ChunksTotal);
        Assert.All(await ChunksAsync(host, pieces.Id), c => Assert.Equal((2_000L, (int?)(c.ChunkIndex / 5)), (c.RowCount, c.RowGroup)));

        foreach (var (job, table) in new[] { (whole, "whole_groups"), (pieces, "group_pieces") })
        {
            var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct);
            Assert.True(final.State == "succeeded", $"{table}: {final.State}: {final.Error}");
            Assert.Equal((30_000L, 29_990L, 10L), (final.TotalRows, final.ScoredRows, final.FailedRows));
            AssertScores(mlp, await ScoresAsync(host, table, job.Id));
        }

        // The whole-group chunks' parts hold every scored row.
        long parquetRows = 0;
        foreach (var part in Directory.GetFiles(parquetOut, "part-*.parquet"))
        {
            await using var reader = await ParquetReader.CreateAsync(part, cancellationToken: Ct);
            parquetRows += reader.RowGroups.Sum(g => g.RowCount);
        }

        Assert.Equal(29_990, parquetRows);
    }

    private static async Task<JobStatus> SubmitAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, status, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return status!;
    }

    private static async Task<IReadOnlyList<ChunkEntity>> ChunksAsync(ServiceTestHost host, Guid jobId) =>
        [.. (await host.Services.GetRequiredService<JobStore>().GetChunksAsync(jobId, Ct)).OrderBy(c => c.ChunkIndex)];

    /// <summary>The job's scores by key; fails when a key was written twice.</summary>
    private static async Task<Dictionary<long, float>> ScoresAsync(ServiceTestHost host, string table, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var cmd = db.CreateCommand($"SELECT customer_id, score FROM scoring.{table} WHERE job_id = $1");
        cmd.Parameters.AddWithValue(jobId);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        var scores = new Dictionary<long, float>();
        while (await reader.ReadAsync(Ct))
        {
            Assert.True(scores.TryAdd(reader.GetInt64(0), reader.GetFloat(1)), $"key {reader.GetInt64(0)} written twice");
        }

        return scores;
    }

    /// <summary>Every generated row without NaN has the reference score; no poison row was scored.</summary>
    private static void AssertScores(MlpModel mlp, Dictionary<long, float> scores)
    {
        Assert.Equal(29_990, scores.Count);
        for (long start = 0; start < Data.Rows; start += Data.RowGroupRows)
        {
            var batch = DatasetGenerator.CreateBatch(Data, start, Data.RowGroupRows);
            var keys = batch["customer_id"].As<long>();
            for (var i = 0; i < batch.RowCount; i++)
            {
                var x = Enumerable.Range(0, Features).Select(f => batch[GeneratedDatasetOptions.FeatureName(f)].As<float>()[i]).ToArray();
                if (float.IsNaN(x[0]))
                {
                    Assert.False(scores.ContainsKey(keys[i]), $"poison row {keys[i]} was scored");
                    continue;
                }

                Assert.Equal(MlpReference.Forward(mlp, x)[0], scores[keys[i]], 1e-4f);
            }
        }
    }
}
