using System.Globalization;
using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// SIGKILL of a real `batchscore serve --roles worker` process at random moments of a chunk, run after run: the next
/// worker process takes the unacknowledged chunk over and every input key is in the results exactly once.
/// The moments are aimed at by watching PostgreSQL (no hooks in the worker): before inference (a random delay after the
/// first chunk message could be taken, no transaction open), mid-COPY (the worker's chunk transaction is open), after
/// commit before ack (the instant the job's done-chunk count grows).
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class WorkerKillFaultTests(ServerFixture servers, ITestOutputHelper output)
{
    private const int Rows = 12_000;
    private const string AppName = "batchscoring-fault-kill";
    private static readonly string[] Moments = ["before inference", "mid-COPY", "after commit before ack"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Workers_killed_at_random_moments_lose_and_duplicate_no_row()
    {
        var runs = FaultPlan.Full ? 21 : 2;
        var random = new Random(int.TryParse(Environment.GetEnvironmentVariable("BATCHSCORING_FAULTS_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 11);
        await using var host = await ServiceTestHost.StartAsync(servers, "fkill", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("fkill", SampleModels.Mlp([16, 64, 64, 1], seed: 2).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = Rows, Features = 16, RowGroupRows = 500 }, Ct);
        var environment = host.ChildEnvironment();
        environment["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(host.PostgresConnectionString) { ApplicationName = AppName }.ConnectionString;
        environment["BatchScoring__ChunkConcurrency"] = "1";
        environment["Logging__LogLevel__Default"] = "Warning";
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);

        var total = new RowTally(0, 0, 0, 0);
        var failures = new List<string>();
        var hit = Moments.ToDictionary(m => m, _ => 0);
        var worker = await StartWorkerAsync(environment);
        try
        {
            for (var run = 0; run < runs; run++)
            {
                var moment = Moments[run % Moments.Length];
                var table = $"kill_{run}";
                var (_, job, body) = await host.SubmitAsync(
                    new SubmitScoringJob { Model = "fkill", Input = input, KeyColumn = "customer_id", OutputTable = table, ChunkRows = 1_000, BatchRows = 250 }, Ct);
                Assert.True(job is not null, body);

                if (await KillAtAsync(moment, worker, host, job!.Id, db, random))
                {
                    hit[moment]++;
                }

                worker.Dispose();
                worker = await StartWorkerAsync(environment);
                var (status, ended) = await FaultReport.WaitForEndOrStatusAsync(host, job.Id, TimeSpan.FromMinutes(3), Ct);
                var tally = await RowTally.CountAsync(host.PostgresConnectionString, table, Rows, Ct);
                total += tally;
                if (!ended || status.State != "succeeded" || !tally.Exact)
                {
                    failures.Add($"run {run} ({moment}): {FaultReport.Describe(status, ended)}, lost {tally.Lost}, duplicated {tally.Duplicated}");
                }
            }
        }
        finally
        {
            worker.Dispose();
        }

        var aimed = string.Join(", ", hit.Select(h => $"{h.Key} ×{h.Value}"));
        FaultReport.Record(output, "worker SIGKILL (real `serve --roles worker` process) at random moments", runs, total,
            failures.Count == 0 ? $"every job succeeded; kills landed: {aimed}" : $"FAILED: {string.Join("; ", failures)}");
        Assert.Empty(failures);
        Assert.True(total.Exact, $"lost {total.Lost}, duplicated {total.Duplicated}");
    }

    private static async Task<ServeProcess> StartWorkerAsync(Dictionary<string, string> environment)
    {
        var worker = ServeProcess.Start("worker", environment);
        await worker.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct);
        return worker;
    }

    /// <summary>Kills the worker at the moment; true when the moment was caught (else it is killed when the job is about to finish).</summary>
    private static async Task<bool> KillAtAsync(string moment, ServeProcess worker, ServiceTestHost host, Guid jobId, NpgsqlDataSource db, Random random)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var startDone = await ChunksDoneAsync(db, jobId);
        var delay = TimeSpan.FromMilliseconds(random.Next(0, 400));
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            var done = await ChunksDoneAsync(db, jobId);
            var caught = moment switch
            {
                "before inference" => DateTime.UtcNow - started >= delay && await OpenTransactionsAsync(db) == 0,
                "mid-COPY" => done >= 1 + random.Next(0, 2) && await OpenTransactionsAsync(db) > 0,
                _ => done > startDone + random.Next(0, 3),
            };
            if (caught)
            {
                worker.Kill();
                return true;
            }

            if (done >= 11)
            {
                break;
            }

            await Task.Delay(10, Ct);
        }

        worker.Kill();
        _ = host;
        return false;
    }

    private static async Task<int> ChunksDoneAsync(NpgsqlDataSource db, Guid jobId)
    {
        await using var command = db.CreateCommand("SELECT count(*) FROM scoring.chunks WHERE job_id = $1 AND state = 'succeeded'");
        command.Parameters.AddWithValue(jobId);
        return (int)(long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task<long> OpenTransactionsAsync(NpgsqlDataSource db)
    {
        await using var command = db.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL AND state <> 'idle'");
        command.Parameters.AddWithValue(AppName);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
