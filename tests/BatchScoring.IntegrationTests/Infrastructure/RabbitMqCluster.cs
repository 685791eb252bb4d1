using System.Diagnostics;
using System.Globalization;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>
/// A three-node RabbitMQ cluster of one test alone, on free loopback ports, started by tests/scripts/rabbitmq-cluster.sh
/// with its own directory, so the test may stop single nodes. Never the shared broker (56720). Disposing stops the nodes
/// and deletes their data.
/// </summary>
public sealed class RabbitMqCluster : IAsyncDisposable
{
    public const string ScriptRelativePath = "tests/scripts/rabbitmq-cluster.sh";
    private readonly string _script;
    private bool _disposed;

    private RabbitMqCluster(string directory, int[] amqpPorts, string script)
    {
        Directory = directory;
        AmqpPorts = amqpPorts;
        _script = script;
    }

    public string Directory { get; }

    /// <summary>AMQP ports of nodes 1, 2 and 3 (index 0..2); each node's Erlang distribution port is the next one.</summary>
    public IReadOnlyList<int> AmqpPorts { get; }

    /// <summary>AMQP URI of node <paramref name="node"/> (1..3).</summary>
    public string UriOf(int node) => $"amqp://guest:guest@{LocalServers.Host}:{AmqpPorts[node - 1]}/";

    public string NodeName(int node) => $"bs-cluster-{AmqpPorts[node - 1]}@localhost";

    /// <summary>Reserves three port pairs and a directory; starts nothing.</summary>
    public static async Task<RabbitMqCluster> CreateAsync(CancellationToken cancellationToken)
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "scripts", "rabbitmq-cluster.sh");
        var script = File.Exists(copied) ? copied : RepositoryPaths.FindUpwards(ScriptRelativePath) ?? throw new FileNotFoundException(ScriptRelativePath);
        var ports = new List<int>();
        while (ports.Count < 3)
        {
            var port = await LocalServers.FreePortPairAsync(cancellationToken);
            if (ports.All(p => Math.Abs(p - port) >= 2))
            {
                ports.Add(port);
            }
        }

        var directory = Path.Combine(Path.GetTempPath(), $"bs-cluster-{ports[0]}-{Guid.NewGuid().ToString("N")[..6]}");
        System.IO.Directory.CreateDirectory(directory);
        return new RabbitMqCluster(directory, [.. ports], script);
    }

    /// <summary>Starts all nodes and forms the cluster (first time), or starts node <paramref name="node"/> (1..3) again.</summary>
    public Task StartAsync(CancellationToken cancellationToken, int? node = null) => RunAsync(cancellationToken, "start", Which(node));

    /// <summary>SIGTERM of one node: it closes its connections and leaves; the other two keep serving.</summary>
    public Task StopNodeAsync(int node, CancellationToken cancellationToken) => RunAsync(cancellationToken, "stop", Which(node));

    /// <summary><c>rabbitmqctl -q</c> on node <paramref name="node"/>; its standard output.</summary>
    public Task<string> CtlAsync(int node, CancellationToken cancellationToken, params string[] arguments) =>
        RunAsync(cancellationToken, ["ctl", Which(node), .. arguments]);

    private static string Which(int? node) => node?.ToString(CultureInfo.InvariantCulture) ?? "all";

    private async Task<string> RunAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(_script);
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["BATCHSCORING_CLUSTER_DIR"] = Directory;
        psi.Environment["BATCHSCORING_CLUSTER_AMQP_PORTS"] = string.Join(' ', AmqpPorts.Select(p => p.ToString(CultureInfo.InvariantCulture)));
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not run {_script}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmq-cluster.sh {string.Join(' ', arguments)} ({Directory}) exited {process.ExitCode}: {await stdout}{await stderr}");
        }

        return await stdout;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await RunAsync(CancellationToken.None, "clean");
        }
        catch (InvalidOperationException)
        {
            // best effort: the directory is under /tmp
        }
    }
}
