using System.Diagnostics;
using System.Net.Sockets;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>
/// The loopback PostgreSQL and RabbitMQ servers that tests/scripts/local-servers.sh starts.
/// Ports and credentials here must match that script.
/// </summary>
public static class LocalServers
{
    public const string Host = "127.0.0.1";
    public const int DefaultPostgresPort = 55432;
    public const int DefaultAmqpPort = 56720;
    public const string ScriptRelativePath = "tests/scripts/local-servers.sh";

    /// <summary>PostgreSQL port: <c>BATCHSCORING_TEST_POSTGRES_PORT</c>, default 55432.</summary>
    public static int PostgresPort { get; } = PortFromEnvironment("BATCHSCORING_TEST_POSTGRES_PORT", DefaultPostgresPort);

    /// <summary>AMQP port: <c>BATCHSCORING_TEST_AMQP_PORT</c>, default 56720 (Erlang distribution uses the next port).</summary>
    public static int AmqpPort { get; } = PortFromEnvironment("BATCHSCORING_TEST_AMQP_PORT", DefaultAmqpPort);

    public static string DataDirectory =>
        Environment.GetEnvironmentVariable("BATCHSCORING_TEST_SERVERS_DIR") is { Length: > 0 } dir
            ? dir
            : "/tmp/batchscoring-test-servers";

    /// <summary>Maintenance-database connection string of the local PostgreSQL (trust auth).</summary>
    public static string PostgresAdminConnectionString =>
        $"Host={Host};Port={PostgresPort};Username=postgres;Database=postgres;Timeout=5;Pooling=false";

    public static string RabbitMqUri => $"amqp://guest:guest@{Host}:{AmqpPort}/";

    private static int PortFromEnvironment(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
        && port is > 0 and < 65535
            ? port
            : fallback;

    /// <summary>True when something accepts TCP connections on 127.0.0.1:<paramref name="port"/>.</summary>
    /// <summary>
    /// A random loopback port whose neighbour (Erlang distribution's port for RabbitMQ) is free too, for a private
    /// server. Below Linux's ephemeral range (32768-60999 by default): there, any client connection's local port could
    /// take it between this check and the server's bind.
    /// </summary>
    public static async Task<int> FreePortPairAsync(CancellationToken ct)
    {
        const int first = 21_000, last = 31_000;
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(first, last);
            if (!await IsListeningAsync(port, ct) && !await IsListeningAsync(port + 1, ct))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port pair between {first} and {last}");
    }

    public static async Task<bool> IsListeningAsync(int port, CancellationToken ct)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync(Host, port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// Finds the start script: next to the test assembly (copied at build), else in the source tree.
    /// </summary>
    public static string? FindScript()
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "scripts", "local-servers.sh");
        return File.Exists(copied) ? copied : RepositoryPaths.FindUpwards(ScriptRelativePath);
    }

    /// <summary>
    /// Runs <c>local-servers.sh start &lt;server&gt;</c>. The script is idempotent, takes a file lock
    /// (so concurrent test runs do not race) and detaches the servers, so they outlive this process.
    /// </summary>
    public static async Task<ScriptResult> StartAsync(string server, CancellationToken ct)
    {
        var script = FindScript()
            ?? throw new FileNotFoundException(
                $"{ScriptRelativePath} was not found next to the test assembly or in any parent of {AppContext.BaseDirectory}");

        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("start");
        psi.ArgumentList.Add(server);

        using var process = Process.Start(psi)
            ?? throw new InvalidOperationException($"could not start bash {script}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(4));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bash {script} start {server} did not finish within 4 minutes");
        }

        return new ScriptResult($"bash {script} start {server}", process.ExitCode, await stdout, await stderr);
    }

    public sealed record ScriptResult(string Command, int ExitCode, string StandardOutput, string StandardError)
    {
        public override string ToString() =>
            $"`{Command}` exited with {ExitCode}.{Environment.NewLine}{StandardOutput}{StandardError}".TrimEnd();
    }
}
