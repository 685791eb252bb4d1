using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
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
/// Chunks made of several row groups or files (docs/chunks.md): how many chunks a job gets, that each key is written
/// once with the score the model gives, and that a combined chunk delivered twice commits once.
/// </summary>
public sealed class ChunkCombiningTests(ServerFixture servers)
{
    private const int Features = 6;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Small_row_groups_are_packed_into_chunks_of_up_to_chunk_rows_and_every_key_is_written_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "combine", ServiceRoles.All, Ct);
        var mlp = SampleModels.Mlp([Features, 8, 1], seed: 7, featureNames: FeatureNames());
        await host.RegisterModelAsync("small_groups", mlp.Bytes, Ct);
        var data = new GeneratedDatasetOptions { Rows = 25_000, Features = Features, RowGroupRows = 1_000, NaNEvery = 2_500, Seed = 17 };
        var input = Path.Combine(host.WorkDir, "groups.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var parquetOut = Path.Combine(host.WorkDir, "out");

        var job = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "small_groups", Input = input, KeyColumn = "customer_id", Passthrough = ["region"],
            OutputTable = "combined_results", OutputParquet = parquetOut, ChunkRows = 10_000, BatchRows = 3_000,
        });

        // 25 row groups of 1,000 rows: 10 + 10 + 5 of them, not 25 chunks.
        Assert.Equal(3, job.ChunksTotal);
        Assert.Equal(new[] { 10, 10, 5 }, await RangeCountsAsync(host, job.Id));
        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal((25_000L, 24_990L, 10L), (final.TotalRows, final.ScoredRows, final.FailedRows));

        var scores = await ScoresAsync(host, "combined_results", job.Id);
        Assert.Equal(24_990, scores.Count);
        AssertScores(mlp, data, scores);

        // One part per chunk, written row group by row group, that adds up to the table.
        var parts = Directory.GetFiles(parquetOut, "part-*.parquet").Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(["part-000000.parquet", "part-000001.parquet", "part-000002.parquet"], parts);
        long parquetRows = 0;
        foreach (var part in parts)
        {
            await using var reader = await ParquetReader.CreateAsync(Path.Combine(parquetOut, part!), cancellationToken: Ct);
            parquetRows += reader.RowGroups.Sum(g => g.RowCount);
        }

        Assert.Equal(24_990, parquetRows);

        // A failed row keeps its row number within the file, whichever range of the chunk it was read in.
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var cmd = db.CreateCommand("SELECT row_number, row_key FROM scoring.failed_rows WHERE job_id = $1 ORDER BY row_number");
        cmd.Parameters.AddWithValue(job.Id);
        await using var failed = await cmd.ExecuteReaderAsync(Ct);
        var expected = 2_499L;
        while (await failed.ReadAsync(Ct))
        {
            Assert.Equal(expected, failed.GetInt64(0));
            Assert.Equal((expected + data.FirstKey).ToString(CultureInfo.InvariantCulture), failed.GetString(1));
            expected += 2_500;
        }

        Assert.Equal(27_499L, expected);
    }

    [Fact]
    public async Task A_chunk_spans_two_files_of_a_directory()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "span", ServiceRoles.All, Ct);
        var mlp = SampleModels.Mlp([Features, 8, 1], seed: 9, featureNames: FeatureNames());
        await host.RegisterModelAsync("span", mlp.Bytes, Ct);
        var folder = Path.Combine(host.WorkDir, "in");
        Directory.CreateDirectory(folder);
        var first = new GeneratedDatasetOptions { Rows = 1_500, Features = Features, RowGroupRows = 500, Seed = 1 };
        var second = first with { Seed = 2, FirstKey = 10_001 };
        await DatasetGenerator.WriteParquetAsync(Path.Combine(folder, "a.parquet"), first, Ct);
        await DatasetGenerator.WriteParquetAsync(Path.Combine(folder, "b.parquet"), second, Ct);

        var job = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "span", Input = folder, KeyColumn = "customer_id", OutputTable = "span_results", ChunkRows = 2_000,
        });

        // Six row groups of 500: a.parquet's three and b.parquet's first make chunk 0, b.parquet's last two chunk 1.
        Assert.Equal(2, job.ChunksTotal);
        var chunks = await host.Services.GetRequiredService<JobStore>().GetChunksAsync(job.Id, Ct);
        var spanning = ChunkRanges.ToSpec(ChunkRanges.ToMessage(chunks[0]));
        Assert.Equal(["a.parquet", "a.parquet", "a.parquet", "b.parquet"], spanning.ReadRanges().Select(r => Path.GetFileName(r.Path)));
        Assert.Equal(2_000, chunks[0].RowCount);

        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        var scores = await ScoresAsync(host, "span_results", job.Id);
        Assert.Equal(3_000, scores.Count);
        AssertScores(mlp, first, scores);
        AssertScores(mlp, second, scores);
    }

    [Fact]
    public async Task A_combined_chunk_delivered_again_and_concurrently_is_written_once()
    {
        // No worker role: the chunk messages wait in the queue while the test delivers each chunk three times by hand.
        await using var host = await ServiceTestHost.StartAsync(servers, "combined_once", ServiceRoles.Api, Ct);
        var mlp = SampleModels.Mlp([Features, 1], seed: 2, featureNames: FeatureNames());
        await host.RegisterModelAsync("once", mlp.Bytes, Ct);
        var data = new GeneratedDatasetOptions { Rows = 4_000, Features = Features, RowGroupRows = 400, Seed = 5 };
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        var parquetOut = Path.Combine(host.WorkDir, "out");
        var job = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "once", Input = input, KeyColumn = "customer_id", OutputTable = "once_results", OutputParquet = parquetOut, ChunkRows = 2_000, BatchRows = 300,
        });
        Assert.Equal(2, job.ChunksTotal);

        var chunks = await host.Services.GetRequiredService<JobStore>().GetChunksAsync(job.Id, Ct);
        var outcomes = new List<ChunkOutcome>();
        foreach (var chunk in chunks)
        {
            Assert.Equal(5, JsonDocument.Parse(chunk.Ranges!).RootElement.GetArrayLength());
            // Two deliveries at once (one waits for the other's lock), then a late one after the commit.
            outcomes.AddRange(await Task.WhenAll(ScoreChunkAsync(host, chunk), ScoreChunkAsync(host, chunk)));
            outcomes.Add(await ScoreChunkAsync(host, chunk));
        }

        Assert.Equal(2, outcomes.Count(o => o == ChunkOutcome.Committed));
        Assert.Equal(4, outcomes.Count(o => o == ChunkOutcome.AlreadyDone));
        var final = await host.GetStatusAsync(job.Id, Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        var scores = await ScoresAsync(host, "once_results", job.Id);
        Assert.Equal(4_000, scores.Count);
        AssertScores(mlp, data, scores);
        Assert.Equal(2, Directory.GetFiles(parquetOut, "part-*.parquet").Length);
        Assert.Empty(Directory.GetFiles(parquetOut, ".*"));
    }

    [Fact]
    public async Task Small_csv_files_are_combined_streamed_in_batches_and_bad_cells_fail_their_own_rows()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "csv_combine", ServiceRoles.All, Ct);
        var mlp = SampleModels.Mlp([2, 4, 1], seed: 3, featureNames: ["a", "b"]);
        await host.RegisterModelAsync("csv_small", mlp.Bytes, Ct);
        var folder = Path.Combine(host.WorkDir, "csv");
        Directory.CreateDirectory(folder);
        var expected = new Dictionary<long, float[]>();
        for (var file = 0; file < 3; file++)
        {
            var text = new StringBuilder("id,a,b\n");
            for (var row = 0; row < 700; row++)
            {
                var id = (file * 1_000L) + row;
                var (a, b) = ((float)(row * 0.001), (float)(0.5 + (file * 0.1)));
                // One unparsable cell in the second file, past the first batch: its reason must reach the failed row.
                var aText = file == 1 && row == 300 ? "oops" : a.ToString("R", CultureInfo.InvariantCulture);
                text.Append(CultureInfo.InvariantCulture, $"{id},{aText},{b.ToString("R", CultureInfo.InvariantCulture)}\n");
                if (aText != "oops")
                {
                    expected[id] = [a, b];
                }
            }

            await File.WriteAllTextAsync(Path.Combine(folder, $"part{file}.csv"), text.ToString(), Ct);
        }

        var job = await SubmitAsync(host, new SubmitScoringJob
        {
            Model = "csv_small", Input = folder, KeyColumn = "id", OutputTable = "csv_small_results", ChunkRows = 1_500, BatchRows = 256, MaxFailedRows = 5,
        });

        // Three files of 700 rows: the first two share a chunk, the third is the second chunk.
        Assert.Equal(2, job.ChunksTotal);
        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal((2_100L, 2_099L, 1L), (final.TotalRows, final.ScoredRows, final.FailedRows));

        var scores = await ScoresAsync(host, "csv_small_results", job.Id);
        Assert.Equal(expected.Keys.Order(), scores.Keys.Order());
        foreach (var (id, x) in expected)
        {
            Assert.Equal(MlpReference.Forward(mlp, x)[0], scores[id], 1e-4f);
        }

        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var cmd = db.CreateCommand("SELECT row_key, row_number, column_name, reason FROM scoring.failed_rows WHERE job_id = $1");
        cmd.Parameters.AddWithValue(job.Id);
        await using var failed = await cmd.ExecuteReaderAsync(Ct);
        Assert.True(await failed.ReadAsync(Ct));
        Assert.Equal(("1300", 300L, "a"), (failed.GetString(0), failed.GetInt64(1), failed.GetString(2)));
        Assert.Contains("unparsable value 'oops'", failed.GetString(3), StringComparison.Ordinal);
        Assert.False(await failed.ReadAsync(Ct));
    }

    private static string[] FeatureNames() => Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();

    private static async Task<JobStatus> SubmitAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, status, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return status!;
    }

    private static Task<ChunkOutcome> ScoreChunkAsync(ServiceTestHost host, ChunkEntity chunk) => Task.Run(async () =>
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ChunkScorer>().ScoreAsync(ChunkRanges.ToMessage(chunk), Ct);
    });

    /// <summary>How many ranges each chunk of the job reads, by chunk index (1 for a chunk of one slice).</summary>
    private static async Task<int[]> RangeCountsAsync(ServiceTestHost host, Guid jobId) =>
        [.. (await host.Services.GetRequiredService<JobStore>().GetChunksAsync(jobId, Ct))
            .Select(c => c.Ranges is null ? 1 : JsonDocument.Parse(c.Ranges).RootElement.GetArrayLength())];

    /// <summary>The job's scores by key; fails when a key was written twice.</summary>
    private static async Task<Dictionary<long, float>> ScoresAsync(ServiceTestHost host, string table, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var cmd = db.CreateCommand($"SELECT {(table.StartsWith("csv", StringComparison.Ordinal) ? "id" : "customer_id")}, score FROM scoring.{table} WHERE job_id = $1");
        cmd.Parameters.AddWithValue(jobId);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        var scores = new Dictionary<long, float>();
        while (await reader.ReadAsync(Ct))
        {
            Assert.True(scores.TryAdd(reader.GetInt64(0), reader.GetFloat(1)), $"key {reader.GetInt64(0)} written twice");
        }

        return scores;
    }

    /// <summary>Every row of the generated dataset that has no NaN is in <paramref name="scores"/> with the reference score.</summary>
    private static void AssertScores(MlpModel mlp, GeneratedDatasetOptions data, Dictionary<long, float> scores)
    {
        for (long start = 0; start < data.Rows; start += data.RowGroupRows)
        {
            var batch = DatasetGenerator.CreateBatch(data, start, (int)Math.Min(data.RowGroupRows, data.Rows - start));
            var keys = batch["customer_id"].As<long>();
            for (var i = 0; i < batch.RowCount; i++)
            {
                var x = Enumerable.Range(0, data.Features).Select(f => batch[GeneratedDatasetOptions.FeatureName(f)].As<float>()[i]).ToArray();
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
