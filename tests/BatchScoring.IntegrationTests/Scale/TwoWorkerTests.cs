using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Faults;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Scale;

/// <summary>
/// Scale-out by adding workers: two `batchscore serve --roles worker` processes, each with its own model cache (its own
/// memory), loading the model from the one shared model store, score the chunks of one job together.
/// </summary>
public sealed class TwoWorkerTests(ServerFixture servers)
{
    private const int Rows = 12_000;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Two_worker_processes_sharing_one_model_store_both_score_chunks_of_one_job_every_key_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "twoworkers", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("two", SampleModels.Mlp([8, 64, 1], seed: 3).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = Rows, Features = 8, RowGroupRows = 500 }, Ct);
        var environment = host.ChildEnvironment();
        // One chunk at a time and a prefetch of one: RabbitMQ hands the chunks out in turn to both consumers.
        environment["BatchScoring__ChunkConcurrency"] = "1";
        using var first = ServeProcess.Start("worker", environment);
        using var second = ServeProcess.Start("worker", environment);
        await Task.WhenAll(
            first.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct),
            second.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct));

        var (response, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "two", Input = input, KeyColumn = "customer_id", OutputTable = "two_workers", ChunkRows = 500 }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var done = await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(3), Ct);
        Assert.Equal(("succeeded", (long)Rows), (done.State, done.ScoredRows));
        var tally = await RowTally.CountAsync(host.PostgresConnectionString, "two_workers", Rows, Ct);
        Assert.True(tally.Exact, $"lost {tally.Lost}, duplicated {tally.Duplicated}, unexpected {tally.Unexpected}");

        var byWorker = await ChunksByWorkerAsync(host.PostgresConnectionString, job.Id);
        Assert.True(byWorker.Count == 2, $"chunks by worker: {string.Join(", ", byWorker.Select(w => $"{w.Key} {w.Value}"))}");
        Assert.Contains(byWorker.Keys, w => w.EndsWith($":{first.Id}", StringComparison.Ordinal));
        Assert.Contains(byWorker.Keys, w => w.EndsWith($":{second.Id}", StringComparison.Ordinal));
        Assert.Equal(Rows / 500, byWorker.Values.Sum());
    }

    /// <summary>Succeeded chunks of the job per worker (<c>host:pid</c> of the process that committed them).</summary>
    internal static async Task<Dictionary<string, int>> ChunksByWorkerAsync(string connectionString, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand("SELECT worker, count(*) FROM scoring.chunks WHERE job_id = $1 AND state = 'succeeded' GROUP BY worker");
        command.Parameters.AddWithValue(jobId);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var result = new Dictionary<string, int>();
        while (await reader.ReadAsync(Ct))
        {
            result[reader.IsDBNull(0) ? "" : reader.GetString(0)] = (int)reader.GetInt64(1);
        }

        return result;
    }
}
