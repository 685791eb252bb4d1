using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Requests;

/// <summary>
/// Measures, not asserts: the latency of the first score request a new version answers after its alias moved,
/// against the median of the 29 that follow, with and without warm-up on alias moves. Explicit (never part of a normal
/// run): <c>dotnet test --project tests/BatchScoring.IntegrationTests -- --filter-class '*PromotionLatencyMeasurement*' --explicit only</c>.
/// Writes a table to the test output and to <c>$TMPDIR/batchscoring-promotion-latency.md</c> (docs/serving.md quotes it).
/// </summary>
public sealed class PromotionLatencyMeasurement(ServerFixture servers)
{
    private const int Features = 64;
    private const int After = 29;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Explicit = true)]
    public async Task First_request_after_a_promotion_against_the_median_of_those_that_follow()
    {
        var report = new StringBuilder("| warm-up on alias move | promotion | first answer by the new version (ms) | median of the next 29 (ms) | ratio | slowest request during the switch (ms) |\n|---|---|---|---|---|---|\n");
        foreach (var warm in new[] { true, false })
        {
            await using var host = await ServiceTestHost.StartAsync(servers, warm ? "promo-warm" : "promo-cold", ServiceRoles.All, Ct, new Dictionary<string, string>
            {
                ["BatchScoring:Requests:WarmOnAliasMove"] = warm ? "true" : "false",
                ["BatchScoring:IntraOpThreads"] = "1",
            });
            for (var v = 1; v <= 4; v++)
            {
                var mlp = SampleModels.Mlp([Features, 512, 512, 1], seed: v, featureNames: Enumerable.Range(0, Features).Select(i => $"f{i}").ToArray());
                await host.RegisterModelAsync("promo", mlp.Bytes, Ct);
            }

            await MoveAsync(host, 1);
            await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
            var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-requests";
            var sent = 0;
            for (var i = 0; i < 30; i++)
            {
                await TimeOneAsync(client, queue, sent++);
            }

            for (var to = 2; to <= 4; to++)
            {
                await MoveAsync(host, to);
                var onNew = new List<double>();
                var slowest = 0.0;
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (onNew.Count < 1 + After && DateTime.UtcNow < deadline)
                {
                    var (ms, version) = await TimeOneAsync(client, queue, sent++);
                    slowest = Math.Max(slowest, ms);
                    if (version == to)
                    {
                        onNew.Add(ms);
                    }
                }

                Assert.Equal(1 + After, onNew.Count);
                var median = onNew.Skip(1).Order().ElementAt(After / 2);
                report.Append(CultureInfo.InvariantCulture, $"| {(warm ? "on" : "off")} | v{to - 1} → v{to} | {onNew[0]:F1} | {median:F1} | {onNew[0] / median:F1} | {slowest:F1} |\n");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), "batchscoring-promotion-latency.md"), report.ToString(), Ct);
    }

    private static async Task MoveAsync(ServiceTestHost host, int version)
    {
        using var response = await host.Client.PutAsJsonAsync("/api/models/promo/aliases/production", new { version }, Ct);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>One single-row request on promo@production, from publish to reply: (milliseconds, version that answered).</summary>
    private static async Task<(double Ms, int Version)> TimeOneAsync(RawAmqpClient client, string queue, int n)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["requestId"] = $"p-{n}",
            ["model"] = new Dictionary<string, object?> { ["name"] = "promo", ["version"] = "production" },
            ["replyTo"] = client.ReplyQueue,
            ["rows"] = new[] { new { key = $"k-{n}", features = Enumerable.Range(0, Features).ToDictionary(i => $"f{i}", i => (float)((n + i) % 7) / 7) } },
        });
        var watch = Stopwatch.StartNew();
        await client.PublishAsync(queue, body, Ct);
        var reply = (await client.ReceiveAsync(1, TimeSpan.FromSeconds(30), Ct))[0].Body;
        return (watch.Elapsed.TotalMilliseconds, reply.GetProperty("model").GetProperty("version").GetInt32());
    }
}
