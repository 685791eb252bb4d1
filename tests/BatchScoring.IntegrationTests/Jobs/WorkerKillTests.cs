using System.Diagnostics;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// Exactly-once under a crash: a worker process is SIGKILLed while a chunk transaction is open; RabbitMQ redelivers
/// the unacknowledged chunk to a second worker, and the results table must still hold every key exactly once.
/// </summary>
public sealed class WorkerKillTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Killing_a_worker_mid_chunk_loses_and_duplicates_nothing()
    {
        // The API runs in this process; only the separate worker processes score.
        await using var host = await ServiceTestHost.StartAsync(servers, "kill", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("kill", SampleModels.Mlp([32, 128, 128, 1], seed: 2).Bytes, Ct);
        var data = new GeneratedDatasetOptions { Rows = 60_000, Features = 32, RowGroupRows = 3_000 };
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, data, Ct);
        const string appName = "batchscoring-kill-test";
        var environment = host.ChildEnvironment();
        environment["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(host.PostgresConnectionString) { ApplicationName = appName }.ConnectionString;
        environment["BatchScoring__ChunkConcurrency"] = "1";

        using var first = StartWorker(environment);
        var (_, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "kill", Input = input, KeyColumn = "customer_id", OutputTable = "kill_results", ChunkRows = 3_000, BatchRows = 500 }, Ct);
        Assert.True(job is not null, body);

        // Wait until the worker has committed some chunks and holds an open transaction (a chunk in flight), then kill it.
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        var killedMidChunk = false;
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline && !first.HasExited)
        {
            var status = await host.GetStatusAsync(job!.Id, Ct);
            if (status.ChunksDone >= 2 && await OpenTransactionsAsync(db, appName) > 0)
            {
                first.Kill(entireProcessTree: true); // SIGKILL: no graceful shutdown, no ack
                killedMidChunk = true;
                break;
            }

            await Task.Delay(20, Ct);
        }

        Assert.True(killedMidChunk, "the worker was never caught with a chunk transaction open");
        await first.WaitForExitAsync(Ct);
        var doneAtKill = (await host.GetStatusAsync(job!.Id, Ct)).ChunksDone;
        Assert.True(doneAtKill < 20, "the job finished before the worker was killed; the test proves nothing");

        using var second = StartWorker(environment);
        try
        {
            var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(3), Ct);
            Assert.Equal("succeeded", final.State);
            Assert.Equal(60_000, final.ScoredRows);
            Assert.Equal(0, final.FailedRows);
        }
        finally
        {
            second.Kill(entireProcessTree: true);
        }

        await using var count = db.CreateCommand("SELECT count(*), count(DISTINCT customer_id), min(customer_id), max(customer_id) FROM scoring.kill_results");
        await using var reader = await count.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        Assert.Equal(60_000L, reader.GetInt64(0));
        Assert.Equal(60_000L, reader.GetInt64(1));
        Assert.Equal(1L, reader.GetInt64(2));
        Assert.Equal(60_000L, reader.GetInt64(3));
    }

    private static async Task<long> OpenTransactionsAsync(NpgsqlDataSource db, string appName)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL AND state <> 'idle'");
        cmd.Parameters.AddWithValue(appName);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static Process StartWorker(Dictionary<string, string> environment)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "batchscore.dll");
        var start = new ProcessStartInfo("dotnet", [cli, "serve", "--roles", "worker", "--urls", "http://127.0.0.1:0"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the worker process");
        process.OutputDataReceived += (_, e) => { };
        process.ErrorDataReceived += (_, e) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
