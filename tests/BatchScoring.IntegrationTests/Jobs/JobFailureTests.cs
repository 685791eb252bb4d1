using System.Net;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Parquet;
using RabbitMQ.Client;
using static BatchScoring.IntegrationTests.Jobs.JobFailureSupport;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// No job hangs: every chunk reaches a terminal state whatever happens to its input, its message or the database,
/// one bad job does not stall others, and `jobs retry` re-runs what did not succeed (docs/job-failures.md).
/// </summary>
public sealed class JobFailureTests(ServerFixture servers)
{
    private static readonly string[] FeatureNames = ["f_000", "f_001", "f_002", "f_003"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A reconciler that runs every second and gives up quickly, so the tests take seconds, not minutes.</summary>
    private static Dictionary<string, string> FastReconciler(int maxFailures = 4) => new()
    {
        ["BatchScoring:DispatchRecoverySchedule"] = "0/1 * * * * ?",
        ["BatchScoring:ChunkRetry:InPlaceRetries"] = "1",
        ["BatchScoring:ChunkRetry:InPlaceDelayMilliseconds"] = "50",
        ["BatchScoring:ChunkRetry:BackoffSeconds"] = "1",
        ["BatchScoring:ChunkRetry:MaxBackoffSeconds"] = "1",
        ["BatchScoring:ChunkRetry:MaxFailures"] = maxFailures.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["BatchScoring:ChunkRetry:LostAfterSeconds"] = "2",
    };

    private static SubmitScoringJob Job(string input, string table, int chunkRows = 1_000) =>
        new() { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = table, ChunkRows = chunkRows };

    private static async Task<string> WriteInputAsync(ServiceTestHost host, string name, long rows, int seed = 1, int nanEvery = 0)
    {
        var path = Path.Combine(host.WorkDir, name);
        await DatasetGenerator.WriteParquetAsync(path, new GeneratedDatasetOptions { Rows = rows, Features = 4, RowGroupRows = 1_000, Seed = seed, NaNEvery = nanEvery }, Ct);
        return path;
    }

    private static async Task<JobStatus> SubmitOkAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, status, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return status!;
    }

    private static async Task<(HttpStatusCode Status, string Body)> RetryAsync(ServiceTestHost host, Guid id)
    {
        using var response = await host.Client.PostAsync($"/api/jobs/{id}/retry", null, Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    private static Task<long> ResultRowsAsync(ServiceTestHost host, string table, Guid job, bool distinct = false) =>
        ScalarAsync(host.PostgresConnectionString, $"SELECT count({(distinct ? "DISTINCT customer_id" : "*")}) FROM scoring.{table} WHERE job_id = $1", job, Ct);

    [Fact]
    public async Task Input_truncated_after_submit_fails_its_job_fast_naming_the_file_while_a_job_submitted_after_it_completes()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "badinput", ServiceRoles.All, Ct);
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 2, featureNames: FeatureNames).Bytes, Ct);
        var bad = await WriteInputAsync(host, "bad.parquet", 100_000);
        var good = await WriteInputAsync(host, "good.parquet", 5_000, seed: 7);

        var badJob = await SubmitOkAsync(host, Job(bad, "bad_results"));
        await using (var file = new FileStream(bad, FileMode.Open, FileAccess.Write))
        {
            file.SetLength(file.Length / 2); // the footer is gone: no chunk can be read any more
        }

        var goodJob = await SubmitOkAsync(host, Job(good, "good_results"));

        // The good job is not stuck behind 100 chunks retrying: it finishes in seconds.
        Assert.Equal("succeeded", (await host.WaitForEndAsync(goodJob.Id, TimeSpan.FromSeconds(45), Ct)).State);
        var failed = await host.WaitForEndAsync(badJob.Id, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal("failed", failed.State);
        Assert.Contains(bad, failed.Error, StringComparison.Ordinal);
        Assert.Contains("input unreadable", failed.Error, StringComparison.Ordinal);
        Assert.Equal(100, failed.ChunksDone + failed.ChunksFailed);
        Assert.Equal(0L, await ScalarAsync(host.PostgresConnectionString, "SELECT count(*) FROM scoring.chunks WHERE job_id = $1 AND state = 'pending'", badJob.Id, Ct));
        // No retry storm: of the chunks that did not succeed (those read before the truncation did), only the few in
        // flight when it failed were ever started, once each; how many succeeded first depends on the machine's speed.
        Assert.True(await ScalarAsync(host.PostgresConnectionString, "SELECT coalesce(sum(attempts), 0) FROM scoring.chunks WHERE job_id = $1 AND state <> 'succeeded'", badJob.Id, Ct) <= 10);

        var (type, message) = await events.WaitAsync(badJob.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobFailed", type);
        Assert.Contains(bad, message.GetProperty("reason").GetString(), StringComparison.Ordinal);

        // Once the cause is gone, retry re-runs what did not succeed; rows scored before the truncation are not duplicated.
        await WriteInputAsync(host, "bad.parquet", 100_000);
        var (status, body) = await RetryAsync(host, badJob.Id);
        Assert.True(status == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(badJob.Id, TimeSpan.FromMinutes(2), Ct)).State);
        Assert.Equal(100_000L, await ResultRowsAsync(host, "bad_results", badJob.Id));
        Assert.Equal(100_000L, await ResultRowsAsync(host, "bad_results", badJob.Id, distinct: true));
        Assert.Equal(2, (await events.EventsOfAsync(badJob.Id, Ct)).Count);
    }

    [Fact]
    public async Task Chunk_messages_lost_or_dead_lettered_are_resent_by_the_reconciler_and_scored_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "lostmsg", ServiceRoles.Api | ServiceRoles.Scheduler, Ct, FastReconciler());
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 3, featureNames: FeatureNames).Bytes, Ct);
        var job = await SubmitOkAsync(host, Job(await WriteInputAsync(host, "in.parquet", 3_000), "lost_results"));

        // No worker yet: take the three messages off the queue. One goes to score-chunks_error (as after exhausted
        // retries), one is dropped (a purge), one goes back.
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-chunks";
        var connection = await new ConnectionFactory { Uri = new Uri(servers.RabbitMqUri) }.CreateConnectionAsync(Ct);
        await using (connection)
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: Ct))
        {
            await channel.QueueDeclareAsync(queue + "_error", durable: true, exclusive: false, autoDelete: false, cancellationToken: Ct);
            var taken = new List<BasicGetResult>();
            await Poll.UntilAsync(async () =>
            {
                if (await channel.BasicGetAsync(queue, autoAck: false, Ct) is { } message)
                {
                    taken.Add(message);
                }

                return taken.Count == 3;
            }, TimeSpan.FromSeconds(10), "three chunk messages in the queue", Ct);
            await channel.BasicPublishAsync("", queue + "_error", mandatory: false, new BasicProperties(taken[0].BasicProperties), taken[0].Body, Ct);
            await channel.BasicAckAsync(taken[0].DeliveryTag, false, Ct);
            await channel.BasicAckAsync(taken[1].DeliveryTag, false, Ct);
            await channel.BasicNackAsync(taken[2].DeliveryTag, false, requeue: true, Ct);
        }

        var worker = await StartRolesAsync(host, ServiceRoles.Worker, Ct);
        try
        {
            var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(60), Ct);
            Assert.Equal("succeeded", final.State);
            Assert.Equal(3_000, final.ScoredRows);
        }
        finally
        {
            await StopAsync(worker);
        }

        Assert.Equal(3_000L, await ResultRowsAsync(host, "lost_results", job.Id));
        Assert.Equal(3_000L, await ResultRowsAsync(host, "lost_results", job.Id, distinct: true));
        Assert.Equal(2L, await ScalarAsync(host.PostgresConnectionString, "SELECT count(*) FROM scoring.chunks WHERE job_id = $1 AND sends >= 2", job.Id, Ct));
    }

    [Fact]
    public async Task Transient_database_errors_are_retried_by_the_reconciler_and_fail_the_chunk_after_its_limit_with_the_reason_on_the_job()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "flaky", ServiceRoles.All, Ct, FastReconciler(maxFailures: 4));
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 4, featureNames: FeatureNames).Bytes, Ct);
        var input = await WriteInputAsync(host, "in.parquet", 500);
        var first = await SubmitOkAsync(host, Job(input, "flaky_results"));
        Assert.Equal("succeeded", (await host.WaitForEndAsync(first.Id, TimeSpan.FromSeconds(60), Ct)).State);

        // An "outage": every write to the result table fails with a transient SQLSTATE (serialization failure).
        const string Outage =
            """
            CREATE OR REPLACE FUNCTION scoring.outage() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'simulated outage' USING ERRCODE = 'serialization_failure'; END $$;
            CREATE TRIGGER outage BEFORE INSERT ON scoring.flaky_results FOR EACH ROW EXECUTE FUNCTION scoring.outage();
            """;
        const string Recover = "DROP TRIGGER outage ON scoring.flaky_results";

        // Outage that ends before the chunk's limit: the reconciler re-sends it after its backoff, and it succeeds.
        await ExecuteAsync(host.PostgresConnectionString, Outage, Ct);
        var recovering = await SubmitOkAsync(host, Job(input, "flaky_results"));
        await Poll.UntilAsync(
            async () => await ScalarAsync(host.PostgresConnectionString, "SELECT coalesce(max(failures), 0) FROM scoring.chunks WHERE job_id = $1", recovering.Id, Ct) >= 2,
            TimeSpan.FromSeconds(30), "two recorded transient failures", Ct);
        await ExecuteAsync(host.PostgresConnectionString, Recover, Ct);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(recovering.Id, TimeSpan.FromSeconds(30), Ct)).State);
        Assert.Equal(500L, await ResultRowsAsync(host, "flaky_results", recovering.Id));

        // Outage that outlasts the limit: the chunk fails with the reason, and so does the job.
        await ExecuteAsync(host.PostgresConnectionString, Outage, Ct);
        var doomed = await SubmitOkAsync(host, Job(input, "flaky_results"));
        var failed = await host.WaitForEndAsync(doomed.Id, TimeSpan.FromSeconds(60), Ct);
        Assert.Equal("failed", failed.State);
        Assert.Contains("gave up after 4 failed deliveries", failed.Error, StringComparison.Ordinal);
        Assert.Contains("40001", failed.Error, StringComparison.Ordinal);
        var (type, message) = await events.WaitAsync(doomed.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobFailed", type);
        Assert.Contains("40001", message.GetProperty("reason").GetString(), StringComparison.Ordinal);

        // Once the database is back, retry completes it.
        await ExecuteAsync(host.PostgresConnectionString, Recover, Ct);
        var (status, body) = await RetryAsync(host, doomed.Id);
        Assert.True(status == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(doomed.Id, TimeSpan.FromSeconds(60), Ct)).State);
        Assert.Equal(500L, await ResultRowsAsync(host, "flaky_results", doomed.Id));
    }

    [Fact]
    public async Task A_chunk_whose_attempts_keep_dying_is_failed_as_poison_instead_of_looping()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "poison", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 5, featureNames: FeatureNames).Bytes, Ct);
        var job = await SubmitOkAsync(host, Job(await WriteInputAsync(host, "in.parquet", 2_000), "poison_results"));
        // As a worker killed on chunk 1 three times leaves it: three attempts opened, none closed.
        await ExecuteAsync(host.PostgresConnectionString,
            $"UPDATE scoring.chunks SET attempts = 3, open_attempts = 3 WHERE job_id = '{job.Id}' AND chunk_index = 1", Ct);

        var worker = await StartRolesAsync(host, ServiceRoles.Worker, Ct);
        try
        {
            var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(60), Ct);
            Assert.Equal("failed", final.State);
            Assert.Contains("chunk 1 failed: 3 attempts stopped without an outcome", final.Error, StringComparison.Ordinal);
        }
        finally
        {
            await StopAsync(worker);
        }
    }

    [Fact]
    public async Task Retry_resumes_cancelled_and_stuck_running_jobs_reruns_threshold_failures_and_refuses_succeeded_jobs()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "retry", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 6, featureNames: FeatureNames).Bytes, Ct);
        var input = await WriteInputAsync(host, "in.parquet", 3_000);

        // Cancelled before any worker ran it.
        var cancelled = await SubmitOkAsync(host, Job(input, "retry_results"));
        using (var cancel = await host.Client.PostAsync($"/api/jobs/{cancelled.Id}/cancel", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        }

        // Running, but its messages are gone (purged): it would wait forever.
        var stuck = await SubmitOkAsync(host, Job(input, "retry_results"));
        var connection = await new ConnectionFactory { Uri = new Uri(servers.RabbitMqUri) }.CreateConnectionAsync(Ct);
        await using (connection)
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: Ct))
        {
            await channel.QueuePurgeAsync(host.Settings["BatchScoring:QueuePrefix"] + "score-chunks", Ct);
        }

        Assert.Equal("running", (await host.GetStatusAsync(stuck.Id, Ct)).State);
        foreach (var id in new[] { cancelled.Id, stuck.Id })
        {
            var (status, body) = await RetryAsync(host, id);
            Assert.True(status == HttpStatusCode.Accepted, body);
        }

        var worker = await StartRolesAsync(host, ServiceRoles.Worker, Ct);
        try
        {
            foreach (var id in new[] { cancelled.Id, stuck.Id })
            {
                Assert.Equal("succeeded", (await host.WaitForEndAsync(id, TimeSpan.FromSeconds(60), Ct)).State);
                Assert.Equal(3_000L, await ResultRowsAsync(host, "retry_results", id));
                Assert.Equal(3_000L, await ResultRowsAsync(host, "retry_results", id, distinct: true));
            }

            // A succeeded job: refused, with why and what to do.
            var (refused, problem) = await RetryAsync(host, stuck.Id);
            Assert.Equal(HttpStatusCode.Conflict, refused);
            Assert.Contains("nothing to retry", problem, StringComparison.Ordinal);
            Assert.Contains("submit a new job", problem, StringComparison.Ordinal);

            // Failed on its error threshold: re-run from scratch (the input may have been fixed in place), no duplicates.
            var dirty = await WriteInputAsync(host, "dirty.parquet", 2_000, nanEvery: 10);
            var threshold = await SubmitOkAsync(host, Job(dirty, "retry_results") with { MaxFailedPercent = 5 });
            Assert.Equal("failed", (await host.WaitForEndAsync(threshold.Id, TimeSpan.FromSeconds(60), Ct)).State);
            var (status, body) = await RetryAsync(host, threshold.Id);
            Assert.True(status == HttpStatusCode.Accepted, body);
            await Poll.UntilAsync(
                async () => await ScalarAsync(host.PostgresConnectionString, "SELECT min(attempts) FROM scoring.chunks WHERE job_id = $1", threshold.Id, Ct) >= 2,
                TimeSpan.FromSeconds(60), "every chunk of the threshold job ran again", Ct);
            var again = await host.WaitForEndAsync(threshold.Id, TimeSpan.FromSeconds(60), Ct);
            Assert.Equal("failed", again.State);
            Assert.Equal(200, again.FailedRows);
            Assert.Equal(1_800, again.ScoredRows);
            Assert.Equal(1_800L, await ResultRowsAsync(host, "retry_results", threshold.Id));
            Assert.Equal(200L, await ScalarAsync(host.PostgresConnectionString, "SELECT count(*) FROM scoring.failed_rows WHERE job_id = $1", threshold.Id, Ct));
        }
        finally
        {
            await StopAsync(worker);
        }
    }

    [Fact]
    public async Task Empty_inputs_succeed_through_the_finisher_with_an_empty_part_the_manifest_and_the_completed_event()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "empty", ServiceRoles.All, Ct);
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 8, featureNames: FeatureNames).Bytes, Ct);
        var parquet = await WriteInputAsync(host, "empty.parquet", 0);
        var output = Path.Combine(host.WorkDir, "out");

        var job = await SubmitOkAsync(host, Job(parquet, "empty_results") with { OutputParquet = output });
        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(60), Ct);
        Assert.Equal("succeeded", final.State);
        Assert.Equal(0, final.TotalRows);
        var (type, message) = await events.WaitAsync(job.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobCompleted", type);
        Assert.Equal(0, message.GetProperty("scoredRows").GetInt64());

        Assert.Equal(["_SUCCESS", "part-000000.parquet"], Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        await using (var reader = await ParquetReader.CreateAsync(Path.Combine(output, "part-000000.parquet"), cancellationToken: Ct))
        {
            Assert.Equal(0, reader.RowGroups.Sum(g => g.RowCount));
            Assert.Contains("score", reader.Schema.GetDataFields().Select(f => f.Name));
        }

        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "_SUCCESS"), Ct));
        Assert.Equal(0, manifest.RootElement.GetProperty("scoredRows").GetInt64());
        Assert.Equal(1, manifest.RootElement.GetProperty("parts").GetArrayLength());
        Assert.Contains("score", manifest.RootElement.GetProperty("schema").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
    }
}
