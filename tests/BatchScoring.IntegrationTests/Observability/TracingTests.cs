using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.StatusPage;
using BatchScoring.Scoring.OnnxWriter;
using RabbitMQ.Client;

namespace BatchScoring.IntegrationTests.Observability;

/// <summary>
/// Traces as an operator's collector receives them: the API (in this process) and a worker (a real `serve --roles
/// worker` process) export over OTLP/HTTP to a test endpoint, configured only by the standard OTEL_* variables.
/// </summary>
public sealed class TracingTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task One_job_is_one_connected_trace_from_the_submit_across_RabbitMQ_to_the_chunk_stages_and_Npgsql()
    {
        await using var collector = await OtlpReceiver.StartAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(servers, "traces", ServiceRoles.Api, Ct, collector.Settings("batchscoring-api"));
        var environment = host.ChildEnvironment();
        foreach (var (key, value) in collector.Settings("batchscoring-worker"))
        {
            environment[key] = value;
        }

        using var worker = ServeProcess.Start("worker", environment);
        await worker.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([DriftScenario.Features, 4, 1], seed: 5, featureNames: DriftScenario.Names()).Bytes, Ct);

        // The caller's own trace: the submit continues it, so its id is known before the job exists.
        using var callerActivity = new Activity("caller");
        callerActivity.SetIdFormat(ActivityIdFormat.W3C);
        callerActivity.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        callerActivity.Start();
        var traceId = callerActivity.TraceId;
        var callerSpan = callerActivity.SpanId;
        HttpResponseMessage response;
        try
        {
            response = await host.Client.PostAsJsonAsync("/api/jobs", new SubmitScoringJob
            {
                Model = "churn",
                Input = DriftScenario.WriteCsv(host, "input.csv", 3_000, seed: 3, shift: 0),
                KeyColumn = "id",
                OutputTable = "scoring.results_churn",
                OutputParquet = Path.Combine(host.WorkDir, "out"),
                ChunkRows = 1_000,
            }, ServiceTestHost.Json, Ct);
        }
        finally
        {
            callerActivity.Stop();
        }

        using var submitted = response;
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var job = System.Text.Json.JsonSerializer.Deserialize<JobStatus>(body, ServiceTestHost.Json)!;
        Assert.Equal("succeeded", (await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct)).State);

        var trace = traceId.ToHexString();
        string[] stages = ["chunk", "chunk.read", "chunk.infer", "chunk.copy", "chunk.parquet"];
        List<ReceivedSpan> spans = [];
        string? problem = "nothing received";
        for (var deadline = DateTime.UtcNow.AddSeconds(30); problem is not null && DateTime.UtcNow < deadline; await Task.Delay(200, Ct))
        {
            spans = collector.Spans.Where(s => s.TraceId == trace).ToList();
            var chunkSpans = spans.Count(s => s.Name == "chunk" && s.Service == "batchscoring-worker");
            var missing = stages.Where(stage => !spans.Any(s => s.Name == stage)).ToList();
            problem = chunkSpans != 3 ? $"{chunkSpans} chunk spans of 3"
                : missing.Count > 0 ? $"no span for {string.Join(", ", missing)}"
                : Connected(spans, callerSpan.ToHexString());
        }

        var received = string.Join("; ", spans.Select(s => $"{s.Service}/{s.Scope}/{s.Name} {s.SpanId}←{s.ParentSpanId}"))
            + $" | expected trace {trace} from caller span {callerSpan.ToHexString()}; submits: " + string.Join("; ", collector.Spans.Where(s => s.Name.StartsWith("POST /api/jobs", StringComparison.Ordinal)).Select(s => $"{s.Name} {s.TraceId}/{s.SpanId}←{s.ParentSpanId}"))
            + " | worker MassTransit: " + string.Join("; ", collector.Spans.Where(s => s.Service == "batchscoring-worker" && s.Scope == "MassTransit").Select(s => $"{s.Name} {s.TraceId}/{s.SpanId}←{s.ParentSpanId}"));
        Assert.True(problem is null, $"{problem}. Received: {received}");
        Assert.Contains(spans, s => s.Service == "batchscoring-api" && s.Scope == "Microsoft.AspNetCore" && s.Name.StartsWith("POST", StringComparison.Ordinal));
        Assert.Contains(spans, s => s.Service == "batchscoring-api" && s.Scope == "MassTransit" && s.Kind == 4); // producer: the chunk messages sent
        Assert.Contains(spans, s => s.Service == "batchscoring-worker" && s.Scope == "MassTransit" && s.Kind == 5); // consumer, in the other process
        Assert.Contains(spans, s => s.Service == "batchscoring-api" && s.Scope == "Npgsql");
        Assert.Contains(spans, s => s.Service == "batchscoring-worker" && s.Scope == "Npgsql");
        Assert.All(spans.Where(s => s.Name.StartsWith("chunk", StringComparison.Ordinal)), s => Assert.Equal("batchscoring-worker", s.Service));

        // A score request continues the trace of the message that carries a traceparent header, up to its answer.
        var requestTrace = ActivityTraceId.CreateRandom();
        var producerSpan = ActivitySpanId.CreateRandom();
        var factory = new ConnectionFactory { Uri = new Uri(servers.RabbitMqUri) };
        await using (var connection = await factory.CreateConnectionAsync(Ct))
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: Ct))
        {
            var properties = new BasicProperties
            {
                ContentType = "application/json",
                Headers = new Dictionary<string, object?> { ["traceparent"] = $"00-{requestTrace.ToHexString()}-{producerSpan.ToHexString()}-01" },
            };
            var request = """{"requestId":"traced","model":{"name":"churn"},"rows":[{"key":"k1","features":{"f_000":0.1,"f_001":0.2,"f_002":0.3}}]}""";
            await channel.BasicPublishAsync("", host.Settings["BatchScoring:QueuePrefix"] + "score-requests", mandatory: true, properties, Encoding.UTF8.GetBytes(request), Ct);
        }

        await Poll.UntilAsync(
            () => Task.FromResult(collector.Spans.Any(s =>
                s.TraceId == requestTrace.ToHexString() && s.ParentSpanId == producerSpan.ToHexString() && s.Name == "score request" && s.Service == "batchscoring-worker")),
            TimeSpan.FromSeconds(30),
            "the score request's span, child of the producer's",
            Ct);
    }

    /// <summary>Null when every span's parent is a span of the trace, except one root whose parent is the caller's span; else what is not.</summary>
    private static string? Connected(List<ReceivedSpan> spans, string callerSpan)
    {
        var ids = spans.Select(s => s.SpanId).ToHashSet(StringComparer.Ordinal);
        var orphans = spans.Where(s => !ids.Contains(s.ParentSpanId)).ToList();
        return orphans.Count == 1 && orphans[0].ParentSpanId == callerSpan
            ? null
            : $"{orphans.Count} spans without a parent in the trace: {string.Join(", ", orphans.Select(o => $"{o.Service}/{o.Scope}/{o.Name} (parent {o.ParentSpanId})"))}";
    }
}
