using System.Diagnostics;
using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// How every role behaves while RabbitMQ or PostgreSQL is down, against private servers this class stops and restarts:
/// readiness reports it, submissions are refused at once, roles started before their dependencies wait for them, and the
/// bus reconnects within seconds of the broker's return.
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class OutageHostingTests(ServerFixture servers, ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // an API of its own, as deployments scale it: no receive endpoint, so MassTransit's health cannot tell
    public async Task Readiness_follows_the_broker_and_a_submit_while_it_is_down_is_refused_at_once_with_nothing_recorded(bool withWorker)
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(
            servers, "ready", withWorker ? ServiceRoles.Api | ServiceRoles.Worker : ServiceRoles.Api, Ct,
            new Dictionary<string, string> { ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri });
        await host.RegisterModelAsync("ready", SampleModels.Mlp([4, 8, 1], seed: 1).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = 4 }, Ct);
        var request = new SubmitScoringJob { Model = "ready", Input = input, KeyColumn = "customer_id", OutputTable = "ready_results", ChunkRows = 500 };
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(host.Client, "/health/ready"));
        var service = await ServiceStatusAsync(host);
        Assert.Equal(withWorker ? 1 : 0, service.ChunkQueue!.Consumers);

        await broker.StopRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(host.Client, "/health/live"));

        // The status page's view of the chunk queue says why it cannot tell (its answers are kept 2 s).
        await Poll.UntilAsync(async () => (service = await ServiceStatusAsync(host)).ChunkQueue is null, TimeSpan.FromSeconds(20), "GET /api/service without a chunk queue", Ct);
        Assert.StartsWith("RabbitMQ could not be asked about", service.ChunkQueueError, StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        var (response, _, body) = await host.SubmitAsync(request, Ct);
        output.WriteLine($"submit with the broker down: {(int)response.StatusCode} after {clock.Elapsed.TotalSeconds:0.0} s: {body}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the refusal took {clock.Elapsed}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("unreachable", body, StringComparison.Ordinal);
        Assert.Contains("Retry later", body, StringComparison.Ordinal);
        Assert.True(response.Headers.RetryAfter is not null, "503 without Retry-After");
        Assert.Equal(0L, await CountJobsAsync(host.PostgresConnectionString));

        await broker.StartRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.OK, TimeSpan.FromSeconds(30), Ct);
        var (accepted, job, acceptedBody) = await host.SubmitAsync(request, Ct);
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, acceptedBody);
        if (withWorker)
        {
            Assert.Equal("succeeded", (await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(2), Ct)).State);
        }
    }

    [Fact]
    public async Task Every_role_started_before_postgres_and_rabbitmq_waits_for_them_then_becomes_ready()
    {
        await using var deps = await PrivateServers.CreateAsync(Ct);
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = deps.PostgresAdminConnectionString.Replace("Pooling=false", "Pooling=true", StringComparison.Ordinal),
            ["ConnectionStrings__RabbitMq"] = deps.RabbitMqUri,
            ["BatchScoring__QueuePrefix"] = servers.UniqueName("wait") + "-",
            ["BatchScoring__ModelStorePath"] = Path.Combine(deps.Directory, "models"),
        };

        // Neither server is running: every role must start, answer liveness and report not ready.
        using var api = ServeProcess.Start("api", environment, "--migrate");
        using var worker = ServeProcess.Start("worker", environment);
        using var scheduler = ServeProcess.Start("scheduler", environment);
        ServeProcess[] roles = [api, worker, scheduler];
        foreach (var role in roles)
        {
            await role.WaitForStatusAsync("/health/live", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, await role.StatusAsync("/health/ready", Ct));
        }

        await deps.StartPostgresAsync(Ct);
        await deps.StartRabbitMqAsync(Ct);
        foreach (var role in roles)
        {
            await role.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct);
            Assert.Contains("Waiting for", role.Output, StringComparison.Ordinal);
        }

        // The scheduler, which reached PostgreSQL before the api had migrated it, waited for the migrations instead of
        // letting Quartz shut it down for good: its reconciler passes complete. Only it exports the reconciler's series
        // (no process exporting them is the no-scheduler alert).
        foreach (var other in (ServeProcess[])[api, worker])
        {
            Assert.DoesNotContain("batchscoring_reconciler_", await other.Http.GetStringAsync("/metrics", Ct), StringComparison.Ordinal);
        }

        await Poll.UntilAsync(
            async () => CompletedReconcilerPasses(await scheduler.Http.GetStringAsync("/metrics", Ct)) >= 1,
            TimeSpan.FromSeconds(60), "a completed reconciler pass on the scheduler's /metrics", Ct);

        // The api role applied the migrations once PostgreSQL answered.
        await using var db = NpgsqlDataSource.Create(deps.PostgresAdminConnectionString);
        await using var jobs = db.CreateCommand("SELECT count(*) FROM scoring.jobs");
        Assert.Equal(0L, (long)(await jobs.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task Roles_started_before_the_database_was_migrated_wait_for_the_migrations_then_schedule()
    {
        var database = await servers.CreateDatabaseAsync("unmigrated", Ct);
        var name = servers.UniqueName("unmigrated");
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = database,
            ["ConnectionStrings__RabbitMq"] = servers.RabbitMqUri,
            ["BatchScoring__QueuePrefix"] = name + "-",
            ["BatchScoring__ModelStorePath"] = Path.Combine(Path.GetTempPath(), name),
            ["BatchScoring__DispatchRecoverySchedule"] = "* * * * * ?",
        };
        using var scheduler = ServeProcess.Start("scheduler", environment);
        using var api = ServeProcess.Start("api", environment);

        // Quartz would have validated its tables, found none and shut the scheduler down for good: the scheduler role
        // then stayed ready and fired nothing, and the API's schedule calls failed until a restart. Both wait instead.
        await Poll.UntilAsync(
            () => scheduler.Output.Contains("the database is not migrated yet", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "the scheduler waiting for the migrations", Ct);
        await scheduler.WaitForStatusAsync("/health/live", HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct); // it logs before it listens
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await scheduler.StatusAsync("/health/ready", Ct));
        await api.WaitForStatusAsync("/health/live", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct);
        using (var early = await api.Http.GetAsync("/api/schedules", Ct))
        {
            var problem = await early.Content.ReadAsStringAsync(Ct);
            Assert.True(early.StatusCode == HttpStatusCode.ServiceUnavailable, problem);
            Assert.Contains("batchscore migrate", problem, StringComparison.Ordinal);
        }

        // No Quartz tables yet: no scheduler runs, which the status page says (not a 500).
        using (var service = await api.Http.GetAsync("/api/service", Ct))
        {
            var body = await service.Content.ReadAsStringAsync(Ct);
            Assert.True(service.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("\"schedulers\":[]", body, StringComparison.Ordinal);
        }

        await using (var db = NpgsqlDataSource.Create(database))
        {
            await BatchScoring.Data.DatabaseMigrator.MigrateAsync(db, Ct);
        }

        await scheduler.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct);
        await Poll.UntilAsync(
            async () => CompletedReconcilerPasses(await scheduler.Http.GetStringAsync("/metrics", Ct)) >= 1,
            TimeSpan.FromSeconds(30), "a completed reconciler pass on the scheduler's /metrics", Ct);
        using var later = await api.Http.GetAsync("/api/schedules", Ct);
        Assert.True(later.StatusCode == HttpStatusCode.OK, await later.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task After_a_broker_outage_the_worker_resumes_within_seconds_and_the_job_completes_exactly_once()
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(
            servers, "reconnect", ServiceRoles.Api | ServiceRoles.Worker, Ct, new Dictionary<string, string>
            {
                ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri,
                ["BatchScoring:ChunkConcurrency"] = "1",
                // The transport's reconnection, in the output of a failed run.
                ["Logging:LogLevel:MassTransit"] = "Debug",
                ["Logging:LogLevel:BatchScoring"] = "Information",
            });
        string[] features = [.. Enumerable.Range(0, 16).Select(GeneratedDatasetOptions.FeatureName)];
        await host.RegisterModelAsync("reconnect", SampleModels.Mlp([16, 256, 256, 1], seed: 4, featureNames: features).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        // 400 chunks (row groups of 250 rows, one chunk each): far more than a worker scores while the broker stops.
        const int rows = 100_000;
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = rows, Features = 16, RowGroupRows = 250 }, Ct);
        var (_, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "reconnect", Input = input, KeyColumn = "customer_id", OutputTable = "reconnect_results", ChunkRows = 250, BatchRows = 250 }, Ct);
        Assert.True(job is not null, body);

        await OutageFaultTests.WaitForChunksAsync(host, job!.Id, 2);
        await broker.StopRabbitMqAsync(Ct);
        var outage = TimeSpan.FromSeconds(20);
        await Task.Delay(outage, Ct); // the outage itself is what is measured against: its length is the scenario
        await broker.StartRabbitMqAsync(Ct);
        var back = Stopwatch.StartNew();
        var doneAtReturn = (await host.GetStatusAsync(job.Id, Ct)).ChunksDone;
        Assert.True(doneAtReturn < job.ChunksTotal, $"all {job.ChunksTotal} chunks were done when the broker came back; nothing was measured");
        // The request listener (its own RabbitMQ.Client connection) must be back as soon: a request published now is answered.
        var answered = Task.Run(async () =>
        {
            await using var client = await RawAmqpClient.ConnectAsync(broker.RabbitMqUri, Ct);
            var row = new Dictionary<string, object> { ["key"] = "after-outage", ["features"] = features.ToDictionary(f => f, _ => (object)0.5) };
            var request = new Dictionary<string, object> { ["requestId"] = "after-outage", ["model"] = new Dictionary<string, object> { ["name"] = "reconnect" }, ["rows"] = new[] { row }, ["replyTo"] = client.ReplyQueue };
            await client.PublishAsync(host.Settings["BatchScoring:QueuePrefix"] + "score-requests", request, Ct);
            var reply = (await client.ReceiveAsync(1, TimeSpan.FromSeconds(60), Ct))[0];
            return (back.Elapsed, reply.Body.GetProperty("outcome").GetString());
        }, Ct);
        await OutageFaultTests.WaitForChunksAsync(host, job.Id, doneAtReturn + 1);
        var resumed = back.Elapsed;
        var (requestAnswered, requestOutcome) = await answered;
        output.WriteLine($"broker down {outage.TotalSeconds:0} s; first chunk done {resumed.TotalSeconds:0.0} s after it was back; a request answered ({requestOutcome}) after {requestAnswered.TotalSeconds:0.0} s");
        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(3), Ct);
        var tally = await RowTally.CountAsync(host.PostgresConnectionString, "reconnect_results", rows, Ct);
        FaultReport.Record(output, "RabbitMQ stopped 20 s mid-job: broker back → next chunk done", 1, tally,
            $"{(resumed < TimeSpan.FromSeconds(10) && requestAnswered < TimeSpan.FromSeconds(10) ? "" : "FAILED: ")}next chunk done {resumed.TotalSeconds:0.0} s after the broker was back, "
            + $"a score request published then answered ({requestOutcome}) after {requestAnswered.TotalSeconds:0.0} s; job {final.State}");
        Assert.True(resumed < TimeSpan.FromSeconds(10), $"the worker resumed {resumed.TotalSeconds:0.0} s after the broker was back");
        Assert.True(requestAnswered < TimeSpan.FromSeconds(10), $"the request listener answered {requestAnswered.TotalSeconds:0.0} s after the broker was back");
        Assert.Equal(ScoreRequestOutcome.Scored, requestOutcome);
        Assert.Equal("succeeded", final.State);
        Assert.True(tally.Exact, $"lost {tally.Lost}, duplicated {tally.Duplicated}");
    }

    [Fact]
    public async Task A_job_that_ends_while_the_broker_is_down_has_its_event_published_once_the_broker_is_back()
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        // No worker and no scheduler: the test plays the last chunk's worker (finisher) and the reconciler's pass.
        await using var host = await ServiceTestHost.StartAsync(
            servers, "eventoutage", ServiceRoles.Api, Ct, new Dictionary<string, string>
            {
                ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri,
                ["BatchScoring:DispatchRecoveryGraceSeconds"] = "0",
            });
        await host.RegisterModelAsync("eventoutage", SampleModels.Mlp([4, 8, 1], seed: 1).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 1_000, Features = 4 }, Ct);
        var (_, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "eventoutage", Input = input, KeyColumn = "customer_id", OutputTable = "eventoutage_results" }, Ct);
        Assert.True(job is not null, body);

        await broker.StopRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30), Ct);
        await JobFailureSupport.EndEveryChunkAsync(host, job!.Id, Ct);
        await using (var scope = host.Services.CreateAsyncScope())
        {
            // The finisher does not wait for the broker: it gives up on the event after its publish timeout.
            var clock = Stopwatch.StartNew();
            await scope.ServiceProvider.GetRequiredService<JobFinisher>().TryFinishAsync(job.Id, Ct);
            output.WriteLine($"finisher with the broker down returned after {clock.Elapsed.TotalSeconds:0.0} s");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the finisher took {clock.Elapsed} with the broker down");
        }

        // The job ended in PostgreSQL; its event never reached the broker.
        Assert.Equal("succeeded", (await host.GetStatusAsync(job.Id, Ct)).State);
        Assert.Null(await JobFailureSupport.EndedEventSentAtAsync(host, job.Id, Ct));

        await broker.StartRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.OK, TimeSpan.FromSeconds(30), Ct);
        await using var events = await JobEventProbe.StartAsync(broker.RabbitMqUri, Ct);
        Assert.Equal(1, (await host.Services.GetRequiredService<DispatchRecovery>().ReconcileAsync(Ct)).EndsAnnounced);
        var (type, message) = await events.WaitAsync(job.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobCompleted", type);
        Assert.Equal(1_000, message.GetProperty("scoredRows").GetInt64());
        Assert.NotNull(await JobFailureSupport.EndedEventSentAtAsync(host, job.Id, Ct));
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, Ct);
        return response.StatusCode;
    }

    private static async Task<BatchScoring.Api.ServiceStatus> ServiceStatusAsync(ServiceTestHost host) =>
        System.Text.Json.JsonSerializer.Deserialize<BatchScoring.Api.ServiceStatus>(await host.Client.GetStringAsync("/api/service", Ct), ServiceTestHost.Json)!;

    /// <summary><c>batchscoring_reconciler_passes_total{outcome="completed"}</c> in a Prometheus exposition (0 when absent).</summary>
    private static double CompletedReconcilerPasses(string exposition) => exposition.Split('\n')
        .Where(line => line.StartsWith("batchscoring_reconciler_passes_total{", StringComparison.Ordinal) && line.Contains("outcome=\"completed\"", StringComparison.Ordinal))
        .Sum(line => double.Parse(line[(line.IndexOf('}', StringComparison.Ordinal) + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));

    private static async Task<long> CountJobsAsync(string connectionString)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand("SELECT count(*) FROM scoring.jobs");
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
