using System.Diagnostics;
using System.Globalization;
using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Faults;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using Npgsql;

namespace BatchScoring.IntegrationTests.Scale;

/// <summary>
/// A three-node RabbitMQ cluster (tests/scripts/rabbitmq-cluster.sh) with quorum work queues: the API and worker A on
/// node 1, worker B on node 2. Node 1 (where the API declared <c>score-chunks</c>, so its quorum leader, and worker A's
/// node) is stopped mid-job; worker B finishes the job, every key exactly once. Full fault set only (`./build.sh faults`):
/// forming the cluster alone takes half a minute.
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class RabbitMqClusterFaultTests(ServerFixture servers, ITestOutputHelper output)
{
    private const int Rows = 40_000;
    private const int ChunkRows = 250;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_node_stopped_mid_job_the_worker_on_another_node_finishes_it_every_key_once()
    {
        Assert.SkipUnless(FaultPlan.Full, "the three-node cluster scenario runs in the full fault set (./build.sh faults)");
        await using var cluster = await RabbitMqCluster.CreateAsync(Ct);
        var clock = Stopwatch.StartNew();
        await cluster.StartAsync(Ct);
        output.WriteLine($"cluster formed in {clock.Elapsed.TotalSeconds:0.0} s ({cluster.Directory})");

        await using var host = await ServiceTestHost.StartAsync(servers, "fcluster", ServiceRoles.Api | ServiceRoles.Scheduler, Ct, new Dictionary<string, string>
        {
            ["ConnectionStrings:RabbitMq"] = cluster.UriOf(1),
            ["BatchScoring:QueueType"] = "quorum",
            ["BatchScoring:QueueDeliveryLimit"] = "10",
            ["BatchScoring:ChunkRetry:LostAfterSeconds"] = "20",
        });
        var input = await OutageFaultTests.PrepareAsync(host, "fcluster");
        var environment = host.ChildEnvironment();
        environment["BatchScoring__ChunkConcurrency"] = "1";
        environment["ConnectionStrings__RabbitMq"] = cluster.UriOf(1);
        using var workerA = ServeProcess.Start("worker", environment);
        environment["ConnectionStrings__RabbitMq"] = cluster.UriOf(2);
        using var workerB = ServeProcess.Start("worker", environment);
        await Task.WhenAll(
            workerA.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(120), Ct),
            workerB.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(120), Ct));

        var prefix = host.Settings["BatchScoring:QueuePrefix"];
        var queues = await cluster.CtlAsync(2, Ct, "list_queues", "--no-table-headers", "name", "type", "leader", "members", "arguments");
        output.WriteLine(queues);
        var chunkQueue = queues.Split('\n').FirstOrDefault(l => l.StartsWith(prefix + "score-chunks\t", StringComparison.Ordinal)) ?? "";
        Assert.Contains("\tquorum\t", chunkQueue, StringComparison.Ordinal);
        Assert.Contains("x-delivery-limit", chunkQueue, StringComparison.Ordinal);
        foreach (var node in new[] { 1, 2, 3 })
        {
            Assert.Contains(cluster.NodeName(node), chunkQueue, StringComparison.Ordinal);
        }

        var table = "cluster_node_stop";
        clock.Restart();
        var (_, job, body) = await host.SubmitAsync(OutageFaultTests.Request("fcluster", input, table) with { ChunkRows = ChunkRows }, Ct);
        Assert.True(job is not null, body);
        await Poll.UntilAsync(
            async () => (await TwoWorkerTests.ChunksByWorkerAsync(host.PostgresConnectionString, job!.Id)).Any(w => w.Key.EndsWith($":{workerA.Id}", StringComparison.Ordinal) && w.Value >= 2),
            TimeSpan.FromMinutes(2), "worker A scored two chunks", Ct, TimeSpan.FromMilliseconds(50));
        var stoppedAfter = clock.Elapsed;
        var doneAtStop = (await TwoWorkerTests.ChunksByWorkerAsync(host.PostgresConnectionString, job!.Id)).Values.Sum();
        await cluster.StopNodeAsync(1, Ct);
        var sinceStop = Stopwatch.StartNew();

        var (status, ended) = await FaultReport.WaitForEndOrStatusAsync(host, job!.Id, TimeSpan.FromMinutes(5), Ct);
        var total = clock.Elapsed;
        var afterStop = sinceStop.Elapsed;
        var tally = await RowTally.CountAsync(host.PostgresConnectionString, table, Rows, Ct);
        var byWorker = await TwoWorkerTests.ChunksByWorkerAsync(host.PostgresConnectionString, job.Id);
        var chunksA = byWorker.Where(w => w.Key.EndsWith($":{workerA.Id}", StringComparison.Ordinal)).Sum(w => w.Value);
        var chunksB = byWorker.Where(w => w.Key.EndsWith($":{workerB.Id}", StringComparison.Ordinal)).Sum(w => w.Value);
        var redeliveries = await RedeliveriesAsync(host.PostgresConnectionString, job.Id);
        var firstChunks = await FirstChunkStartsAsync(host.PostgresConnectionString, job.Id);

        // The stopped node rejoins by itself when started again.
        await cluster.StartAsync(Ct, 1);
        var clusterStatus = await cluster.CtlAsync(2, Ct, "cluster_status", "--formatter", "json");
        var running = clusterStatus[clusterStatus.IndexOf("\"running_nodes\"", StringComparison.Ordinal)..];
        running = running[..(running.IndexOf(']', StringComparison.Ordinal) + 1)];

        var ok = ended && status.State == "succeeded" && tally.Exact && chunksB > 0;
        FaultReport.Record(output, "RabbitMQ three-node cluster, quorum queues: node 1 (API, worker A, queue leader) stopped mid-job; worker B on node 2", 1, tally,
            string.Create(CultureInfo.InvariantCulture,
                $"{(ok ? "job succeeded" : $"FAILED: {FaultReport.Describe(status, ended)}")} in {total.TotalSeconds:0.0} s ({afterStop.TotalSeconds:0.0} s after the stop at {stoppedAfter.TotalSeconds:0.0} s, {doneAtStop} of {Rows / ChunkRows} chunks done then); chunks: A (pid {workerA.Id}) {chunksA}, B (pid {workerB.Id}) {chunksB}; {redeliveries} redelivered; node 1 rejoined: {running.Contains(cluster.NodeName(1), StringComparison.Ordinal)}; first chunk started (s after submit): {firstChunks}"));
        Assert.True(ok, $"{FaultReport.Describe(status, ended)}; lost {tally.Lost}, duplicated {tally.Duplicated}; chunks A {chunksA}, B {chunksB}");
        Assert.Contains(cluster.NodeName(1), running, StringComparison.Ordinal);
    }

    private static async Task<string> FirstChunkStartsAsync(string connectionString, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand(
            "SELECT worker, extract(epoch FROM min(c.started_at) - j.created_at)::float8 FROM scoring.chunks c JOIN scoring.jobs j ON j.id = c.job_id WHERE c.job_id = $1 GROUP BY worker, j.created_at");
        command.Parameters.AddWithValue(jobId);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var parts = new List<string>();
        while (await reader.ReadAsync(Ct))
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{(reader.IsDBNull(0) ? "?" : reader.GetString(0))} {reader.GetDouble(1):0.0}"));
        }

        return string.Join(", ", parts);
    }

    /// <summary>Deliveries beyond the first, over the job's chunks (every started attempt counts once).</summary>
    private static async Task<long> RedeliveriesAsync(string connectionString, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand("SELECT coalesce(sum(attempts), 0) - count(*) FROM scoring.chunks WHERE job_id = $1");
        command.Parameters.AddWithValue(jobId);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
