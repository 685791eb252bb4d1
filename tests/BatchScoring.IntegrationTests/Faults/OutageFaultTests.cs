using System.Diagnostics;
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
/// RabbitMQ stopped and PostgreSQL stopped (<c>pg_ctl stop -m immediate</c>, mid-COPY) while a job runs, then restarted,
/// on private servers: the same API and worker (no restart) finish the job, every key exactly once.
/// Reduced run: one 5 s outage each; full run (BATCHSCORING_FAULTS=full): 15 s and 2 minutes.
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class OutageFaultTests(ServerFixture servers, ITestOutputHelper output)
{
    private const int Rows = 40_000;
    private const string AppName = "batchscoring-fault-pg";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TimeSpan[] Outages => FaultPlan.Full ? [TimeSpan.FromSeconds(15), TimeSpan.FromMinutes(2)] : [TimeSpan.FromSeconds(5)];

    [Fact]
    public async Task RabbitMQ_stopped_mid_job_then_restarted_the_job_completes_and_a_submit_meanwhile_is_refused()
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(
            servers, "frabbit", ServiceRoles.All, Ct, new Dictionary<string, string>
            {
                ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri,
                ["BatchScoring:ChunkConcurrency"] = "1",
            });
        var input = await PrepareAsync(host, "frabbit");
        var failures = new List<string>();
        foreach (var outage in Outages)
        {
            var table = $"rabbit_{(int)outage.TotalSeconds}";
            var job = await SubmitAsync(host, "frabbit", input, table);
            await WaitForChunksAsync(host, job, 2);
            await broker.StopRabbitMqAsync(Ct);
            var clock = Stopwatch.StartNew();
            var (refused, _, refusedBody) = await host.SubmitAsync(Request("frabbit", input, table + "_late"), Ct);
            var refusal = $"submit while down: {(int)refused.StatusCode} in {clock.Elapsed.TotalSeconds:0.0} s";
            if (refused.StatusCode != HttpStatusCode.ServiceUnavailable)
            {
                failures.Add($"{refusal}: {refusedBody}");
            }

            await Task.Delay(outage > clock.Elapsed ? outage - clock.Elapsed : TimeSpan.Zero, Ct); // the outage's length is the scenario
            await broker.StartRabbitMqAsync(Ct);
            var (status, ended) = await FaultReport.WaitForEndOrStatusAsync(host, job, TimeSpan.FromMinutes(4), Ct);
            var tally = await RowTally.CountAsync(host.PostgresConnectionString, table, Rows, Ct);
            var ok = ended && status.State == "succeeded" && tally.Exact;
            FaultReport.Record(output, $"RabbitMQ stopped {Describe(outage)} mid-job, then restarted (API and worker not restarted)", 1, tally,
                $"{(ok ? "" : "FAILED: ")}job {FaultReport.Describe(status, ended)}; {refusal}");
            if (!ok)
            {
                failures.Add($"{Describe(outage)}: job {FaultReport.Describe(status, ended)}, lost {tally.Lost}, duplicated {tally.Duplicated}");
            }
        }

        Assert.Empty(failures);
    }

    [Fact]
    public async Task PostgreSQL_stopped_immediately_mid_copy_then_restarted_the_job_completes()
    {
        await using var database = await PrivateServers.CreateAsync(Ct);
        await database.StartPostgresAsync(Ct);
        var connectionString = new NpgsqlConnectionStringBuilder(await database.CreateDatabaseAsync("fpg", Ct)) { ApplicationName = AppName }.ConnectionString;
        await using var host = await ServiceTestHost.StartAsync(
            servers, "fpg", ServiceRoles.All, Ct, new Dictionary<string, string>
            {
                ["ConnectionStrings:Postgres"] = connectionString,
                ["BatchScoring:ChunkConcurrency"] = "1",
                // A chunk whose outcome could not be recorded (PostgreSQL down) goes to score-chunks_error; the
                // reconciler re-sends it once its job has been quiet this long (120 s by default).
                ["BatchScoring:ChunkRetry:LostAfterSeconds"] = "20",
            });
        var input = await PrepareAsync(host, "fpg");
        var failures = new List<string>();
        foreach (var outage in Outages)
        {
            var table = $"pg_{(int)outage.TotalSeconds}";
            var job = await SubmitAsync(host, "fpg", input, table);
            await WaitForChunksAsync(host, job, 2);
            var midCopy = await WaitForOpenTransactionAsync(database.PostgresAdminConnectionString, TimeSpan.FromSeconds(30));
            await database.StopPostgresImmediatelyAsync(Ct);
            var clock = Stopwatch.StartNew();
            var notReady = await WaitForReadinessAsync(host, HttpStatusCode.ServiceUnavailable, outage);
            await Task.Delay(outage > clock.Elapsed ? outage - clock.Elapsed : TimeSpan.Zero, Ct); // the outage's length is the scenario
            await database.StartPostgresAsync(Ct);
            var readyAgain = await WaitForReadinessAsync(host, HttpStatusCode.OK, TimeSpan.FromSeconds(30));
            if (notReady is null || readyAgain is null)
            {
                failures.Add($"{Describe(outage)}: /health/ready {(notReady is null ? "stayed 200 while PostgreSQL was down" : "did not return to 200 within 30 s")}");
            }

            var (status, ended) = await FaultReport.WaitForEndOrStatusAsync(host, job, FaultPlan.Full ? TimeSpan.FromMinutes(5) : TimeSpan.FromMinutes(1), Ct);
            var tally = await RowTally.CountAsync(connectionString, table, Rows, Ct);
            var ok = ended && status.State == "succeeded" && tally.Exact;
            FaultReport.Record(output, $"PostgreSQL `pg_ctl stop -m immediate` {(midCopy ? "mid-COPY" : "mid-job")} for {Describe(outage)}, then restarted", 1, tally,
                $"{(ok ? "" : "FAILED: ")}job {FaultReport.Describe(status, ended)}; /health/ready 503 {Seconds(notReady)} after the stop, 200 {Seconds(readyAgain)} after the restart");
            if (!ok)
            {
                failures.Add($"{Describe(outage)}: job {FaultReport.Describe(status, ended)}, lost {tally.Lost}, duplicated {tally.Duplicated}");
            }
        }

        Assert.Empty(failures);
    }

    internal static async Task<string> PrepareAsync(ServiceTestHost host, string model)
    {
        await host.RegisterModelAsync(model, SampleModels.Mlp([16, 256, 256, 1], seed: 4).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = Rows, Features = 16, RowGroupRows = 250 }, Ct);
        return input;
    }

    internal static SubmitScoringJob Request(string model, string input, string table) =>
        new() { Model = model, Input = input, KeyColumn = "customer_id", OutputTable = table, ChunkRows = 250, BatchRows = 250 };

    private static async Task<Guid> SubmitAsync(ServiceTestHost host, string model, string input, string table)
    {
        var (_, job, body) = await host.SubmitAsync(Request(model, input, table), Ct);
        Assert.True(job is not null, body);
        return job!.Id;
    }

    internal static Task WaitForChunksAsync(ServiceTestHost host, Guid id, int chunks) =>
        Poll.UntilAsync(
            async () => (await host.GetStatusAsync(id, Ct)).ChunksDone >= chunks, TimeSpan.FromMinutes(2), $"{chunks} chunks of job {id} done", Ct, TimeSpan.FromMilliseconds(50));

    /// <summary>True once a chunk transaction of the worker is open (the COPY runs in it); false if none was seen in time.</summary>
    private static async Task<bool> WaitForOpenTransactionAsync(string adminConnectionString, TimeSpan timeout)
    {
        await using var db = NpgsqlDataSource.Create(adminConnectionString);
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            await using var command = db.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL AND state <> 'idle'");
            command.Parameters.AddWithValue(AppName);
            if ((long)(await command.ExecuteScalarAsync(Ct))! > 0)
            {
                return true;
            }

            await Task.Delay(5, Ct);
        }

        return false;
    }

    /// <summary>How long until /health/ready answered <paramref name="expected"/>, or null if not within <paramref name="timeout"/>.</summary>
    private static async Task<TimeSpan?> WaitForReadinessAsync(ServiceTestHost host, HttpStatusCode expected, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            using var response = await host.Client.GetAsync("/health/ready", Ct);
            if (response.StatusCode == expected)
            {
                return clock.Elapsed;
            }

            await Task.Delay(100, Ct);
        }

        return null;
    }

    private static string Seconds(TimeSpan? elapsed) =>
        elapsed is { } value ? string.Create(CultureInfo.InvariantCulture, $"{value.TotalSeconds:0.0} s") : "never";

    private static string Describe(TimeSpan outage) =>
        outage.TotalSeconds < 60 ? string.Create(CultureInfo.InvariantCulture, $"{outage.TotalSeconds:0} s") : string.Create(CultureInfo.InvariantCulture, $"{outage.TotalMinutes:0} min");
}
