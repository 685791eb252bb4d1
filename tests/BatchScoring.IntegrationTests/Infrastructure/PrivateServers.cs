using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>
/// A PostgreSQL and/or RabbitMQ of one test alone, on free loopback ports, started by tests/scripts/local-servers.sh
/// with its own data directory, so the test may stop, kill and restart them. Never the shared servers (55432/56720).
/// Disposing stops them and deletes their data.
/// </summary>
public sealed class PrivateServers : IAsyncDisposable
{
    private readonly string _script;
    private bool _disposed;

    private PrivateServers(string directory, int postgresPort, int amqpPort, string script)
    {
        Directory = directory;
        PostgresPort = postgresPort;
        AmqpPort = amqpPort;
        _script = script;
    }

    /// <summary>Where both servers keep their data and logs (rabbitmq/log, postgres/postgres.log).</summary>
    public string Directory { get; }

    public int PostgresPort { get; }

    public int AmqpPort { get; }

    public string RabbitMqUri => $"amqp://guest:guest@{LocalServers.Host}:{AmqpPort}/";

    public string PostgresAdminConnectionString =>
        $"Host={LocalServers.Host};Port={PostgresPort};Username=postgres;Database=postgres;Timeout=5;Pooling=false";

    /// <summary>Reserves ports and a directory; starts nothing (call the Start methods, e.g. after starting a role that must wait).</summary>
    public static async Task<PrivateServers> CreateAsync(CancellationToken cancellationToken)
    {
        var script = LocalServers.FindScript() ?? throw new FileNotFoundException(LocalServers.ScriptRelativePath);
        var postgres = await LocalServers.FreePortPairAsync(cancellationToken);
        int amqp;
        do
        {
            amqp = await LocalServers.FreePortPairAsync(cancellationToken);
        }
        while (Math.Abs(amqp - postgres) < 2);

        var directory = Path.Combine(Path.GetTempPath(), $"bs-private-{amqp}-{Guid.NewGuid().ToString("N")[..6]}");
        System.IO.Directory.CreateDirectory(directory);
        return new PrivateServers(directory, postgres, amqp, script);
    }

    public Task StartRabbitMqAsync(CancellationToken cancellationToken) => RunAsync("start", "rabbitmq", null, cancellationToken);

    /// <summary>SIGTERM: the node closes its connections and exits (as <c>rabbitmqctl stop</c>, without seconds of CLI start-up).</summary>
    public Task StopRabbitMqAsync(CancellationToken cancellationToken) =>
        RunAsync("stop", "rabbitmq", new() { ["BATCHSCORING_TEST_RABBITMQ_STOP"] = "term" }, cancellationToken);

    /// <summary>SIGKILL of the node: connections drop without a close frame.</summary>
    public Task KillRabbitMqAsync(CancellationToken cancellationToken) =>
        RunAsync("stop", "rabbitmq", new() { ["BATCHSCORING_TEST_RABBITMQ_STOP"] = "kill" }, cancellationToken);

    public Task StartPostgresAsync(CancellationToken cancellationToken) => RunAsync("start", "postgres", null, cancellationToken);

    /// <summary><c>pg_ctl stop -m immediate</c>: every backend is killed, open transactions are lost, as in a crash.</summary>
    public Task StopPostgresImmediatelyAsync(CancellationToken cancellationToken) =>
        RunAsync("stop", "postgres", new() { ["BATCHSCORING_TEST_PG_STOP_MODE"] = "immediate" }, cancellationToken);

    /// <summary>Creates an empty database on the private PostgreSQL and returns a connection string to it.</summary>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await using (var connection = new NpgsqlConnection(PostgresAdminConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        return new NpgsqlConnectionStringBuilder(PostgresAdminConnectionString) { Database = name, Pooling = true, Timeout = 5 }.ConnectionString;
    }

    private async Task RunAsync(string command, string server, Dictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(_script);
        psi.ArgumentList.Add(command);
        psi.ArgumentList.Add(server);
        psi.Environment["BATCHSCORING_TEST_SERVERS_DIR"] = Directory;
        psi.Environment["BATCHSCORING_TEST_POSTGRES_PORT"] = PostgresPort.ToString(CultureInfo.InvariantCulture);
        psi.Environment["BATCHSCORING_TEST_AMQP_PORT"] = AmqpPort.ToString(CultureInfo.InvariantCulture);
        foreach (var (key, value) in environment ?? [])
        {
            psi.Environment[key] = value;
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not run {_script}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"local-servers.sh {command} {server} ({Directory}) exited {process.ExitCode}: {await stdout}{await stderr}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        NpgsqlConnection.ClearAllPools();
        try
        {
            await RunAsync("clean", "all", null, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            // best effort: the directory is under /tmp
        }
    }
}
