using System.Diagnostics;
using BatchScoring.IntegrationTests.Infrastructure;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// A RabbitMQ node of this test's own (tests/scripts/local-servers.sh with its own directory and ports), whose only user
/// is the one given: for tests that need credentials the shared test broker does not have.
/// </summary>
internal sealed class PrivateRabbitMq : IAsyncDisposable
{
    private readonly Dictionary<string, string> _environment;

    private PrivateRabbitMq(Dictionary<string, string> environment, string uri)
    {
        _environment = environment;
        Uri = uri;
    }

    public string Uri { get; }

    /// <param name="prometheusPort">With a port: the rabbitmq_prometheus plugin listens there (per-queue series on /metrics).</param>
    public static async Task<PrivateRabbitMq> StartAsync(string user, string password, CancellationToken cancellationToken, int? prometheusPort = null)
    {
        var port = await LocalServers.FreePortPairAsync(cancellationToken);
        var directory = Directory.CreateTempSubdirectory("bs-private-rabbit-").FullName;
        var environment = new Dictionary<string, string>
        {
            ["BATCHSCORING_TEST_SERVERS_DIR"] = directory,
            ["BATCHSCORING_TEST_AMQP_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (prometheusPort is { } metrics)
        {
            environment["BATCHSCORING_TEST_RABBITMQ_PROMETHEUS_PORT"] = metrics.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        // The script writes rabbitmq.conf but leaves advanced.config to us: the node creates this user on first boot.
        Directory.CreateDirectory(Path.Combine(directory, "rabbitmq"));
        await File.WriteAllTextAsync(
            Path.Combine(directory, "rabbitmq", "advanced.config"),
            $"[{{rabbit, [{{default_user, <<\"{user}\">>}}, {{default_pass, <<\"{password}\">>}}, {{loopback_users, []}}]}}].\n",
            cancellationToken);
        var broker = new PrivateRabbitMq(environment, $"amqp://{user}:{password}@127.0.0.1:{port}/");
        var (exit, output) = await broker.ScriptAsync("start", cancellationToken);
        Assert.True(exit == 0, $"private RabbitMQ did not start: {output}");
        return broker;
    }

    public async ValueTask DisposeAsync()
    {
        await ScriptAsync("clean", CancellationToken.None);
    }

    private async Task<(int Exit, string Output)> ScriptAsync(string command, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("bash", [LocalServers.FindScript()!, command, "rabbitmq"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in _environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, stdout + await stderr);
    }
}
