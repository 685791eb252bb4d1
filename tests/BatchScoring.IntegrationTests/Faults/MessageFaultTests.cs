using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;
using RabbitMQ.Client;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// Bad messages on every queue the service consumes, and a burst of score requests beside a running job: every bad
/// message ends in an error or skipped queue with a reason, the consumers keep going, every request is answered.
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class MessageFaultTests(ServerFixture servers, ITestOutputHelper output)
{
    private const int Features = 16;
    private static readonly string[] FeatureNames = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Content type and body of each bad message published on every queue.</summary>
    private static readonly (string Name, string? ContentType, byte[] Body)[] BadMessages =
    [
        ("garbage bytes", null, [0x00, 0xFF, 0xFE, 0x13, 0x37, 0x80, 0x81, 0x0A]),
        ("garbage bytes as an envelope", "application/vnd.masstransit+json", Encoding.UTF8.GetBytes("\u0001{not json")),
        ("[]", "application/json", Encoding.UTF8.GetBytes("[]")),
        ("[] as an envelope", "application/vnd.masstransit+json", Encoding.UTF8.GetBytes("[]")),
        ("JSON of an unknown type", "application/vnd.masstransit+json",
            Encoding.UTF8.GetBytes("""{"messageId":"8f6c0000-0000-0000-0000-000000000001","messageType":["urn:message:Elsewhere:SomethingElse"],"message":{"hello":"world"}}""")),
        ("plain JSON object", "application/json", Encoding.UTF8.GetBytes("""{"hello":"world"}""")),
    ];

    [Fact]
    public async Task Garbage_on_every_consumed_queue_is_moved_aside_with_a_reason_and_the_consumers_keep_going()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "fgarbage", ServiceRoles.Api | ServiceRoles.Worker, Ct);
        await host.RegisterModelAsync("fgarbage", SampleModels.Mlp([Features, 8, 1], seed: 5, featureNames: FeatureNames).Bytes, Ct);
        var prefix = host.Settings["BatchScoring:QueuePrefix"];
        string[] queues = [prefix + "score-chunks", prefix + "submit-scoring-job", prefix + "score-requests"];

        var factory = new ConnectionFactory { Uri = new Uri(servers.RabbitMqUri) };
        await using var connection = await factory.CreateConnectionAsync(Ct);
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), Ct);
        foreach (var queue in queues)
        {
            foreach (var (_, contentType, body) in BadMessages)
            {
                var properties = new BasicProperties { DeliveryMode = DeliveryModes.Persistent, MessageId = Guid.NewGuid().ToString() };
                if (contentType is not null)
                {
                    properties.ContentType = contentType;
                }

                await channel.BasicPublishAsync("", queue, mandatory: true, properties, body, Ct);
            }
        }

        // The consumers keep going: a job and a request after the garbage are served.
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = Features, RowGroupRows = 500 }, Ct);
        var (_, job, jobBody) = await host.SubmitAsync(new SubmitScoringJob { Model = "fgarbage", Input = input, KeyColumn = "customer_id", OutputTable = "garbage_results", ChunkRows = 500 }, Ct);
        Assert.True(job is not null, jobBody);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        await client.PublishAsync(prefix + "score-requests", RequestJson("after-garbage", "fgarbage", client.ReplyQueue, 0), Ct);
        var reply = (await client.ReceiveAsync(1, TimeSpan.FromSeconds(30), Ct))[0];
        Assert.Equal(ScoreRequestOutcome.Scored, reply.Body.GetProperty("outcome").GetString());
        Assert.Equal("succeeded", (await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(2), Ct)).State);
        var tally = await RowTally.CountAsync(host.PostgresConnectionString, "garbage_results", 3_000, Ct);

        // Every bad message is in <queue>_error or <queue>_skipped, with a reason.
        var moved = new List<string>();
        var missing = new List<string>();
        foreach (var queue in queues)
        {
            var aside = await TakeAllAsync(connection, [queue + "_error", queue + "_skipped"], BadMessages.Length);
            moved.AddRange(aside.Select(a => $"{a.Queue}: {a.Reason}"));
            if (aside.Count != BadMessages.Length)
            {
                missing.Add($"{queue}: {aside.Count} of {BadMessages.Length} moved aside");
            }

            missing.AddRange(aside.Where(a => a.Reason is null).Select(a => $"{a.Queue}: a message without a reason"));
        }

        foreach (var line in moved)
        {
            output.WriteLine(line);
        }

        var published = queues.Length * BadMessages.Length;
        FaultReport.Record(output, "garbage bytes, `[]`, unknown-type JSON on each consumed queue (score-chunks, submit-scoring-job, score-requests)", published, tally,
            missing.Count == 0
                ? $"all {published} moved to `_error`/`_skipped` with a reason; a job and a request after them were served"
                : $"FAILED: {string.Join("; ", missing)}");
        Assert.Empty(missing);
        Assert.True(tally.Exact);
    }

    [Fact]
    public async Task A_burst_of_score_requests_beside_a_running_job_is_answered_in_full()
    {
        var requests = FaultPlan.Full ? 1_000 : 1_000;
        await using var host = await ServiceTestHost.StartAsync(servers, "fburst", ServiceRoles.Api | ServiceRoles.Worker, Ct);
        await host.RegisterModelAsync("fburst", SampleModels.Mlp([Features, 32, 1], seed: 6, featureNames: FeatureNames).Bytes, Ct);
        var prefix = host.Settings["BatchScoring:QueuePrefix"];
        var input = Path.Combine(host.WorkDir, "in.parquet");
        const int rows = 30_000;
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = rows, Features = Features, RowGroupRows = 1_000 }, Ct);
        var (_, job, jobBody) = await host.SubmitAsync(new SubmitScoringJob { Model = "fburst", Input = input, KeyColumn = "customer_id", OutputTable = "burst_results", ChunkRows = 1_000 }, Ct);
        Assert.True(job is not null, jobBody);
        await OutageFaultTests.WaitForChunksAsync(host, job!.Id, 1);

        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var sends = Enumerable.Range(0, requests).Select(i => client.PublishAsync(prefix + "score-requests", RequestJson($"burst-{i}", "fburst", client.ReplyQueue, i), Ct));
        await Task.WhenAll(sends);
        var jobWhileAnswering = (await host.GetStatusAsync(job.Id, Ct)).State;
        var replies = await client.ReceiveAsync(requests, TimeSpan.FromMinutes(3), Ct);

        var byId = replies.GroupBy(r => r.Body.GetProperty("requestId").GetString()!).ToDictionary(g => g.Key, g => g.Count());
        var outcomes = replies.GroupBy(r => r.Body.GetProperty("outcome").GetString()!).ToDictionary(g => g.Key, g => g.Count());
        var scored = outcomes.GetValueOrDefault(ScoreRequestOutcome.Scored);
        var explicitRejections = requests - scored;
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand("SELECT count(*), count(DISTINCT request_id) FROM scoring.request_results_fburst");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        var (written, distinct) = (reader.GetInt64(0), reader.GetInt64(1));
        await reader.DisposeAsync();

        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(3), Ct);
        var tally = await RowTally.CountAsync(host.PostgresConnectionString, "burst_results", rows, Ct);
        var requestTally = new RowTally(requests, requests - byId.Count, byId.Values.Sum() - byId.Count + (written - distinct), 0);
        var ok = requestTally.Exact && written == scored && final.State == "succeeded" && tally.Exact;
        FaultReport.Record(output, $"{requests:N0} concurrent score requests while a {rows:N0}-row job runs", 1, requestTally + tally,
            $"{(ok ? "" : "FAILED: ")}{byId.Count:N0}/{requests:N0} answered ({string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}), {written:N0} result rows for {scored:N0} scored; "
            + $"job {jobWhileAnswering} during the burst, then {final.State}");
        Assert.Equal(requests, byId.Count);
        Assert.All(byId, kv => Assert.Equal(1, kv.Value));
        Assert.Equal(scored, written);
        Assert.Equal(written, distinct);
        // Rejections must be explicit answers (e.g. overloaded), never invalid requests of ours.
        Assert.True(scored > 0, $"nothing scored: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}; first answer {replies[0].Body.GetRawText()}");
        Assert.Equal(requests, scored + explicitRejections);
        Assert.Equal("succeeded", final.State);
        Assert.True(tally.Exact);
    }

    private static string RequestJson(string requestId, string model, string replyTo, int seed)
    {
        var random = new Random(seed);
        var features = Enumerable.Range(0, Features).ToDictionary(GeneratedDatasetOptions.FeatureName, _ => (object)Math.Round((random.NextDouble() * 2) - 1, 4));
        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["requestId"] = requestId,
            ["model"] = new Dictionary<string, object> { ["name"] = model },
            ["rows"] = new[] { new Dictionary<string, object> { ["key"] = requestId + "-k", ["features"] = features } },
            ["replyTo"] = replyTo,
        });
    }

    /// <summary>Takes the messages of the given queues (waiting up to 60 s for <paramref name="expected"/> of them) with their reason headers.</summary>
    private static async Task<List<(string Queue, string? Reason)>> TakeAllAsync(IConnection connection, string[] queues, int expected)
    {
        var taken = new List<(string, string?)>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            foreach (var queue in queues)
            {
                await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
                try
                {
                    await channel.QueueDeclarePassiveAsync(queue, Ct);
                }
                catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
                {
                    continue; // not declared: nothing was moved there
                }

                while (await channel.BasicGetAsync(queue, autoAck: true, Ct) is { } message)
                {
                    taken.Add((queue, Reason(message.BasicProperties.Headers)));
                }
            }

            if (taken.Count >= expected || DateTime.UtcNow > deadline)
            {
                return taken;
            }

            await Task.Delay(250, Ct);
        }
    }

    private static string? Reason(IDictionary<string, object?>? headers)
    {
        foreach (var name in new[] { "MT-Fault-Message", "MT-Reason" })
        {
            if (headers?.TryGetValue(name, out var value) == true && value is not null)
            {
                return value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : Convert.ToString(value, CultureInfo.InvariantCulture);
            }
        }

        return null;
    }
}
