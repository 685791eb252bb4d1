using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>BatchScoring:QueueType = quorum: the work queues are quorum queues, and jobs and requests flow through them.</summary>
public sealed class QuorumQueueTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task With_quorum_queues_jobs_and_requests_are_scored_and_the_queues_are_quorum()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "quorum", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:QueueType"] = "quorum",
        });
        var prefix = host.Settings["BatchScoring:QueuePrefix"];
        var names = new[] { "f_000", "f_001", "f_002" };
        var mlp = SampleModels.Mlp([3, 4, 1], seed: 2, featureNames: names);
        await host.RegisterModelAsync("churn", mlp.Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "input.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = 3, RowGroupRows = 1_000 }, Ct);

        var (response, job, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = input, KeyColumn = "customer_id", OutputTable = "scoring.results_churn", ChunkRows = 500,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var done = await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(("succeeded", 2_000L), (done.State, done.ScoredRows));

        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        await client.PublishAsync(prefix + "score-requests",
            """{"requestId":"q-1","model":{"name":"churn"},"rows":[{"key":"k","features":{"f_000":0.1,"f_001":0.2,"f_002":0.3}}],"replyTo":"REPLY"}""".Replace("REPLY", client.ReplyQueue, StringComparison.Ordinal), Ct);
        var reply = (await client.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct))[0].Body;
        Assert.Equal("scored", reply.GetProperty("outcome").GetString());

        // Declaring them as classic queues must be refused: they exist as quorum queues.
        foreach (var queue in new[] { "score-chunks", "submit-scoring-job", "score-requests" })
        {
            var error = await Assert.ThrowsAsync<OperationInterruptedException>(() => DeclareClassicAsync(prefix + queue));
            Assert.Contains("x-queue-type", error.Message, StringComparison.Ordinal);
        }
    }

    private async Task DeclareClassicAsync(string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(servers.RabbitMqUri) }.CreateConnectionAsync(Ct);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "classic" }, cancellationToken: Ct);
    }
}
