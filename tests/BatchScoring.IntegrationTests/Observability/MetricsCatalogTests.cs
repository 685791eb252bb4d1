using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Cli;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.IntegrationTests.StatusPage;

namespace BatchScoring.IntegrationTests.Observability;

/// <summary>
/// docs/observability.md's metric table, the instruments in the code, a real /metrics, the Grafana dashboard and the
/// alert rules all name the same metrics.
/// </summary>
public sealed partial class MetricsCatalogTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Root => Path.GetDirectoryName(RepositoryPaths.DirectoryPackagesProps)!;

    [Fact]
    public void The_doc_table_lists_every_instrument_of_the_BatchScoring_meter_with_its_type()
    {
        var documented = DocumentedMetrics();
        var instruments = Instruments();
        Assert.Equal(instruments.Keys.Order(StringComparer.Ordinal), documented.Keys.Order(StringComparer.Ordinal));
        Assert.All(instruments, i => Assert.True(documented[i.Key] == i.Value, $"{i.Key}: {i.Value} in the code, {documented[i.Key]} in the doc"));
    }

    [Fact]
    public async Task After_a_job_a_request_and_an_audit_metrics_are_documented_and_every_dashboard_and_alert_metric_exists()
    {
        var rabbitMetricsPort = ServeProcess.FreeTcpPort();
        await using var broker = await PrivateRabbitMq.StartAsync("observe", "observe-pw", Ct, rabbitMetricsPort);
        await using var host = await ServiceTestHost.StartAsync(
            servers, "catalog", ServiceRoles.All, Ct, new Dictionary<string, string> { ["ConnectionStrings:RabbitMq"] = broker.Uri });
        await DriftScenario.RegisterAndProfileAsync(host, Ct);
        await DriftScenario.ScoreShiftedAndAuditAsync(host, Ct);
        await using (var client = await RawAmqpClient.ConnectAsync(broker.Uri, Ct))
        {
            await client.PublishAsync(
                host.Settings["BatchScoring:QueuePrefix"] + "score-requests",
                JsonSerializer.Serialize(new
                {
                    requestId = "catalog",
                    model = new { name = "churn" },
                    rows = new[] { new { key = "k1", features = new Dictionary<string, double> { ["f_000"] = 0.1, ["f_001"] = 0.2, ["f_002"] = 0.3 } } },
                    replyTo = client.ReplyQueue,
                }),
                Ct);
            Assert.Equal("scored", (await client.ReceiveAsync(1, TimeSpan.FromSeconds(60), Ct))[0].Body.GetProperty("outcome").GetString());
        }

        var exported = ExportedTypes(await host.Client.GetStringAsync("/metrics", Ct));
        var documented = DocumentedMetrics();
        Assert.All(exported, e => Assert.True(
            documented.TryGetValue(e.Key, out var type) && type == e.Value, $"/metrics has {e.Key} ({e.Value}); docs/observability.md has {type ?? "nothing"}"));

        using var rabbit = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{rabbitMetricsPort}") };
        var rabbitExported = ExportedTypes(await rabbit.GetStringAsync("/metrics", Ct));
        var referenced = DashboardMetrics().Select(m => ("dashboard", m)).Concat(AlertMetrics().Select(m => ("alert rules", m))).ToList();
        Assert.Contains(referenced, r => r.m.StartsWith("rabbitmq_", StringComparison.Ordinal));
        Assert.All(referenced, r =>
        {
            var name = Regex.Replace(r.m, "_(bucket|sum|count)$", "");
            var source = name.StartsWith("rabbitmq_", StringComparison.Ordinal) ? rabbitExported : exported;
            Assert.True(source.ContainsKey(name) || source.ContainsKey(r.m), $"the {r.Item1} use {r.m}, which no /metrics exposes");
        });
    }

    /// <summary>The table under "## Metrics": <c>| `name` | type | labels | meaning |</c>.</summary>
    private static Dictionary<string, string> DocumentedMetrics()
    {
        var doc = File.ReadAllText(Path.Combine(Root, "docs", "observability.md"));
        var section = doc[doc.IndexOf("\n## Metrics", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 1, StringComparison.Ordinal)];
        var rows = MetricRow().Matches(section).Select(m => (Name: m.Groups[1].Value, Type: m.Groups[2].Value)).ToList();
        Assert.True(rows.Count >= 20, $"only {rows.Count} metric rows found in docs/observability.md");
        Assert.Equal(rows.Count, rows.Select(r => r.Name).Distinct().Count());
        return rows.ToDictionary(r => r.Name, r => r.Type, StringComparer.Ordinal);
    }

    /// <summary>Every instrument on a meter named BatchScoring, named and typed as the Prometheus exporter writes it.</summary>
    private static Dictionary<string, string> Instruments()
    {
        foreach (var assembly in new[] { typeof(ScoringMetrics), typeof(Worker.Consumers.ScoreChunkConsumer), typeof(ServiceDefaults.ServiceDefaultsExtensions) }.Select(t => t.Assembly))
        {
            foreach (var type in assembly.GetTypes().Where(t => !t.ContainsGenericParameters && t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
                .Any(f => typeof(Instrument).IsAssignableFrom(f.FieldType) || f.FieldType == typeof(Meter))))
            {
                RuntimeHelpers.RunClassConstructor(type.TypeHandle);
            }
        }

        var instruments = new Dictionary<string, string>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == ScoringMetrics.MeterName)
                {
                    var (name, type) = Exported(instrument);
                    instruments[name] = type;
                }
            },
        };
        listener.Start();
        return instruments;
    }

    /// <summary>The exporter's naming (OpenTelemetry Prometheus compatibility): dots to underscores, unit <c>s</c> as <c>_seconds</c>, counters end in <c>_total</c>.</summary>
    private static (string Name, string Type) Exported(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_');
        if (instrument.Unit == "s" && !name.EndsWith("_seconds", StringComparison.Ordinal))
        {
            name += "_seconds";
        }

        var definition = instrument.GetType().GetGenericTypeDefinition();
        var monotonic = definition == typeof(Counter<>) || definition == typeof(ObservableCounter<>);
        if (monotonic && !name.EndsWith("_total", StringComparison.Ordinal))
        {
            name += "_total";
        }

        var type = monotonic ? "counter" : definition == typeof(Histogram<>) ? "histogram" : "gauge";
        return (name, type);
    }

    /// <summary>Name → type from the <c># TYPE</c> lines of a Prometheus text scrape.</summary>
    private static Dictionary<string, string> ExportedTypes(string scrape) => scrape.Split('\n')
        .Where(line => line.StartsWith("# TYPE ", StringComparison.Ordinal))
        .Select(line => line.Split(' '))
        .GroupBy(parts => parts[2])
        .ToDictionary(g => g.Key, g => g.First()[3].Trim(), StringComparer.Ordinal);

    private static IEnumerable<string> DashboardMetrics()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "deploy", "grafana", "batchscoring-dashboard.json")));
        var expressions = new List<string>();
        Collect(dashboard.RootElement, expressions);
        Assert.NotEmpty(expressions);
        return expressions.SelectMany(MetricNames).Distinct();

        static void Collect(JsonElement element, List<string> into)
        {
            if (element.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name == "expr" && property.Value.ValueKind == JsonValueKind.String)
                    {
                        into.Add(property.Value.GetString()!);
                    }
                    else
                    {
                        Collect(property.Value, into);
                    }
                }
            }
            else if (element.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in element.EnumerateArray())
                {
                    Collect(item, into);
                }
            }
        }
    }

    /// <summary>Every metric name in the rules file (comments aside): expressions and annotations alike.</summary>
    private static IEnumerable<string> AlertMetrics()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "deploy", "k8s", "prometheus-rules.yaml"))
            .Where(line => !line.TrimStart().StartsWith('#'));
        var names = MetricNames(string.Join('\n', lines)).Distinct().ToList();
        Assert.True(names.Count >= 8, $"only {names.Count} metrics in the alert rules");
        return names;
    }

    private static IEnumerable<string> MetricNames(string promql) => MetricName().Matches(promql).Select(m => m.Value);

    [GeneratedRegex(@"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)\s*\|", RegexOptions.Multiline)]
    private static partial Regex MetricRow();

    [GeneratedRegex(@"\b(?:batchscoring|rabbitmq)_[a-z0-9_]+\b")]
    private static partial Regex MetricName();
}
