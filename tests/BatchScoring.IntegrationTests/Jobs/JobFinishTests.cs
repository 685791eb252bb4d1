using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// One path finishes every job: the job finisher decides the outcome and publishes the event, also when no worker
/// is left to call it (a retry with nothing to send, a worker that stopped right after the last chunk's commit).
/// </summary>
public sealed class JobFinishTests(ServerFixture servers)
{
    private static readonly string[] FeatureNames = ["f_000", "f_001", "f_002", "f_003"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_retry_with_nothing_left_to_send_finishes_the_job_through_the_finisher()
    {
        // No worker: the job's chunk is ended by hand, as a worker whose commit landed after the cancel would leave it.
        await using var host = await ServiceTestHost.StartAsync(servers, "retrynone", ServiceRoles.Api, Ct);
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        var job = await SubmitAsync(host);
        using (var cancel = await host.Client.PostAsync($"/api/jobs/{job.Id}/cancel", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        }

        await JobFailureSupport.EndEveryChunkAsync(host, job.Id, Ct);

        using (var retry = await host.Client.PostAsync($"/api/jobs/{job.Id}/retry", null, Ct))
        {
            Assert.True(retry.StatusCode == HttpStatusCode.Accepted, await retry.Content.ReadAsStringAsync(Ct));
        }

        var final = await host.GetStatusAsync(job.Id, Ct);
        Assert.Equal(("succeeded", 500L), (final.State, final.ScoredRows));
        var (type, message) = await events.WaitAsync(job.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobCompleted", type);
        Assert.Equal(500, message.GetProperty("scoredRows").GetInt64());
        await JobFailureSupport.WaitForEndedEventSentAsync(host, job.Id, Ct);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_end_whose_event_was_lost_is_published_again_by_the_reconciler_with_the_same_message_id(bool afterRetry)
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "lostevent", ServiceRoles.Api, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:DispatchRecoveryGraceSeconds"] = "0",
        });
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        var recovery = host.Services.GetRequiredService<DispatchRecovery>();
        var job = await SubmitAsync(host);
        if (afterRetry)
        {
            // An earlier end whose event went out: a retry must make the next end wait for its own event.
            await SetEndedAsync(host, job.Id, "failed", eventSent: true);
            using var retry = await host.Client.PostAsync($"/api/jobs/{job.Id}/retry", null, Ct);
            Assert.True(retry.StatusCode == HttpStatusCode.Accepted, await retry.Content.ReadAsStringAsync(Ct));
            Assert.Null(await JobFailureSupport.EndedEventSentAtAsync(host, job.Id, Ct));
        }

        // The finisher's state change committed, then the broker connection dropped before its event was confirmed.
        await JobFailureSupport.EndEveryChunkAsync(host, job.Id, Ct);
        await SetEndedAsync(host, job.Id, "succeeded", eventSent: false);
        Assert.Empty(await events.EventsOfAsync(job.Id, Ct));

        using var measured = new ReconcilerMeasurements();
        Assert.Equal(1, (await recovery.ReconcileAsync(Ct)).EndsAnnounced);
        Assert.Equal((1, 1), (measured.Passes("completed"), measured.Actions("ends_announced")));
        var (type, message) = await events.WaitAsync(job.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobCompleted", type);
        Assert.Equal(500, message.GetProperty("scoredRows").GetInt64());
        Assert.NotNull(await JobFailureSupport.EndedEventSentAtAsync(host, job.Id, Ct));

        // Confirmed: not published again.
        Assert.Equal(0, (await recovery.ReconcileAsync(Ct)).EndsAnnounced);
        Assert.Single(await events.EventsOfAsync(job.Id, Ct));
        Assert.Equal((2, 1), (measured.Passes("completed"), measured.Actions("ends_announced")));

        // Lost again after the publish (the confirmation was not recorded): the second copy carries the same message
        // id, so a subscriber that deduplicates by it sees the end once.
        await SetEndedEventSentAtAsync(host, job.Id, sent: false);
        Assert.Equal(1, (await recovery.ReconcileAsync(Ct)).EndsAnnounced);
        Assert.Equal((3, 2, 0), (measured.Passes("completed"), measured.Actions("ends_announced"), measured.Passes("failed")));
        var ids = await WaitForEventCountAsync(events, job.Id, 2);
        Assert.NotNull(ids[0]);
        Assert.Equal(ids[0], ids[1]);
    }

    [Fact]
    public async Task A_job_whose_chunks_all_ended_but_that_nobody_finished_is_finished_by_the_reconciler()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "unfinished", ServiceRoles.Api | ServiceRoles.Scheduler, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:DispatchRecoverySchedule"] = "0/1 * * * * ?",
            ["BatchScoring:ChunkRetry:LostAfterSeconds"] = "2",
        });
        await using var events = await JobEventProbe.StartAsync(servers.RabbitMqUri, Ct);
        var job = await SubmitAsync(host);

        // The worker committed the last chunk and stopped before it called the finisher; its redelivered message finds the chunk done.
        await JobFailureSupport.EndEveryChunkAsync(host, job.Id, Ct);

        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(("succeeded", 500L), (final.State, final.ScoredRows));
        var (type, _) = await events.WaitAsync(job.Id, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("ScoringJobCompleted", type);
        await JobFailureSupport.WaitForEndedEventSentAsync(host, job.Id, Ct);
        Assert.Single(await events.EventsOfAsync(job.Id, Ct));
    }

    private static async Task<JobStatus> SubmitAsync(ServiceTestHost host)
    {
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 4, featureNames: FeatureNames).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 500, Features = 4, RowGroupRows = 500 }, Ct);
        var (response, status, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "finish_results", ChunkRows = 1_000 }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal(1, status!.ChunksTotal);
        return status;
    }

    /// <summary>Ends the job by hand, as the finisher's state change does, with or without its event recorded as confirmed.</summary>
    private static async Task SetEndedAsync(ServiceTestHost host, Guid jobId, string state, bool eventSent)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand(
            """
            UPDATE scoring.jobs SET state = $2, finished_at = now(), updated_at = now(),
                ended_event_sent_at = CASE WHEN $3 THEN now() END
            WHERE id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = eventSent });
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
    }

    private static async Task SetEndedEventSentAtAsync(ServiceTestHost host, Guid jobId, bool sent)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand("UPDATE scoring.jobs SET ended_event_sent_at = CASE WHEN $2 THEN now() END WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = sent });
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
    }

    private static async Task<IReadOnlyList<string?>> WaitForEventCountAsync(JobEventProbe events, Guid jobId, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var ids = await events.MessageIdsOfAsync(jobId, Ct);
            if (ids.Count >= count)
            {
                return ids;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId}: {ids.Count} of {count} events within 10 s");
            await Task.Delay(50, Ct);
        }
    }
}
