using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using BatchScoring.IntegrationTests.Infrastructure;
using DotNet.Testcontainers.Configurations;
using Npgsql;
using RabbitMQ.Client;
using Testcontainers.PostgreSql;
using Testcontainers.RabbitMq;

[assembly: AssemblyFixture(typeof(ServerFixture))]

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>
/// Real PostgreSQL and RabbitMQ servers for the whole test assembly. Test classes take it in their
/// constructor. Each server is resolved independently, first match wins:
/// <list type="number">
/// <item>an environment override (<see cref="PostgresOverrideVariable"/>, <see cref="RabbitMqOverrideVariable"/>);</item>
/// <item>Testcontainers, when a Docker engine answers (set <see cref="DockerSwitchVariable"/>=0 to skip);</item>
/// <item>a local server on the fixed loopback port (<see cref="LocalServers"/>): reused when something
/// already listens there, else started by tests/scripts/local-servers.sh and left running for the next run.</item>
/// </list>
/// If nothing works, every property throws <see cref="ServersUnavailableException"/> saying what was tried;
/// tests that need no server still run.
/// </summary>
public sealed partial class ServerFixture : IAsyncLifetime
{
    public const string PostgresOverrideVariable = "BATCHSCORING_TEST_POSTGRES";
    public const string RabbitMqOverrideVariable = "BATCHSCORING_TEST_RABBITMQ";
    public const string DockerSwitchVariable = "BATCHSCORING_TEST_DOCKER";

    public const string SourceEnvironment = "environment override";
    public const string SourceTestcontainers = "testcontainers";
    public const string SourceLocalStarted = "local servers started by the fixture";
    public const string SourceLocalFound = "local servers found running";

    /// <summary>Databases this fixture creates are named <c>bstest_&lt;prefix&gt;_&lt;UTC time&gt;_&lt;random&gt;</c>.</summary>
    public const string DatabaseNamePrefix = "bstest_";

    private static readonly TimeSpan StaleDatabaseAge = TimeSpan.FromHours(12);

    private readonly Lock gate = new();
    private readonly List<string> createdDatabases = [];
    private readonly List<IAsyncDisposable> containers = [];
    private readonly Lazy<bool> dockerAvailable = new(DetectDocker);

    private Exception? postgresError;
    private Exception? rabbitMqError;
    private string? postgresConnectionString;
    private string? postgresAdminConnectionString;
    private string? rabbitMqUri;
    private string? postgresSource;
    private string? rabbitMqSource;

    /// <summary>Connection string (superuser) to a database created for this test run and dropped after it.</summary>
    public string PostgresConnectionString => Available(postgresConnectionString, postgresError);

    /// <summary>Connection string (superuser) to the server's maintenance database; use for server-level work.</summary>
    public string PostgresAdminConnectionString => Available(postgresAdminConnectionString, postgresError);

    /// <summary>AMQP URI, <c>amqp://user:pass@host:port/vhost</c>.</summary>
    public string RabbitMqUri => Available(rabbitMqUri, rabbitMqError);

    /// <summary>Where the servers came from; one value when both agree, else "postgres: …; rabbitmq: …".</summary>
    public string Source =>
        PostgresSource == RabbitMqSource ? PostgresSource : $"postgres: {PostgresSource}; rabbitmq: {RabbitMqSource}";

    /// <summary>Where PostgreSQL came from (one of the Source* constants).</summary>
    public string PostgresSource => Available(postgresSource, postgresError);

    /// <summary>Where RabbitMQ came from (one of the Source* constants).</summary>
    public string RabbitMqSource => Available(rabbitMqSource, rabbitMqError);

    /// <summary>
    /// Creates an empty database with a unique name (dropped when the test run ends) and returns a
    /// superuser connection string to it.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string prefix, CancellationToken ct)
    {
        var admin = PostgresAdminConnectionString;
        var name = NewDatabaseName(prefix);
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync(ct);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
                    await create.ExecuteNonQueryAsync(ct);
                    break;
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 10)
                {
                    // "source database template1 is being accessed by other users": someone is connected to template1.
                    await Task.Delay(200 * attempt, ct);
                }
            }
        }

        lock (gate)
        {
            createdDatabases.Add(name);
        }

        return new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true }.ConnectionString;
    }

    /// <summary>A lower-case name unique to this call, safe for queues, exchanges, tables and schemas.</summary>
    public string UniqueName(string prefix) => $"{Sanitize(prefix, 40)}_{Guid.NewGuid().ToString("N")[..12]}";

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var postgres = ResolvePostgresAsync(ct);
        var rabbit = ResolveRabbitMqAsync(ct);

        // Each server fails on its own: without RabbitMQ the PostgreSQL tests still run, and vice versa.
        try
        {
            (postgresAdminConnectionString, postgresSource) = await postgres;
            await DropStaleDatabasesAsync(postgresAdminConnectionString, ct);
            postgresConnectionString = await CreateDatabaseAsync("run", ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            postgresError = e;
        }

        try
        {
            (rabbitMqUri, rabbitMqSource) = await rabbit;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            rabbitMqError = e;
        }

        Report(postgresError is null && rabbitMqError is null
            ? $"integration test servers: {Source} (PostgreSQL {Describe(postgresConnectionString!)}, RabbitMQ {Describe(new Uri(rabbitMqUri!))})"
            : $"integration test servers UNAVAILABLE:{Environment.NewLine}{postgresError?.Message}{Environment.NewLine}{rabbitMqError?.Message}");
    }

    public async ValueTask DisposeAsync()
    {
        string[] databases;
        lock (gate)
        {
            databases = [.. createdDatabases];
            createdDatabases.Clear();
        }

        if (databases.Length > 0 && postgresAdminConnectionString is not null)
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                await using var connection = new NpgsqlConnection(postgresAdminConnectionString);
                await connection.OpenAsync();
                foreach (var name in databases)
                {
                    await DropDatabaseAsync(connection, name, CancellationToken.None);
                }
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                Report($"could not drop test databases ({string.Join(", ", databases)}): {e.Message}");
            }
        }

        foreach (var container in containers)
        {
            await container.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------ PostgreSQL

    private async Task<(string AdminConnectionString, string Source)> ResolvePostgresAsync(CancellationToken ct)
    {
        var tried = new List<string>();

        if (Environment.GetEnvironmentVariable(PostgresOverrideVariable) is { Length: > 0 } overridden)
        {
            if (await CheckPostgresAsync(overridden, TimeSpan.FromSeconds(10), ct) is { } error)
            {
                throw Unavailable("PostgreSQL", [$"{PostgresOverrideVariable} is set but its server did not answer: {error}"]);
            }

            return (overridden, SourceEnvironment);
        }

        tried.Add($"{PostgresOverrideVariable}: not set");

        if (dockerAvailable.Value)
        {
            try
            {
                var container = new PostgreSqlBuilder("postgres:15-alpine").Build();
                lock (gate)
                {
                    containers.Add(container);
                }

                await container.StartAsync(ct);
                var cs = new NpgsqlConnectionStringBuilder(container.GetConnectionString()) { Database = "postgres" }.ConnectionString;
                return (cs, SourceTestcontainers);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                tried.Add($"Testcontainers (postgres:15-alpine): {e.GetType().Name}: {e.Message}");
            }
        }
        else
        {
            tried.Add(DockerSkippedReason());
        }

        var local = LocalServers.PostgresAdminConnectionString;
        if (await LocalServers.IsListeningAsync(LocalServers.PostgresPort, ct))
        {
            var error = await CheckPostgresAsync(local, TimeSpan.FromSeconds(10), ct);
            if (error is null)
            {
                return (local, SourceLocalFound);
            }

            tried.Add($"something listens on {LocalServers.Host}:{LocalServers.PostgresPort} but a PostgreSQL connection as 'postgres' (trust) failed: {error}");
            throw Unavailable("PostgreSQL", tried);
        }

        var result = await LocalServers.StartAsync("postgres", ct);
        if (result.ExitCode == 0 && await CheckPostgresAsync(local, TimeSpan.FromSeconds(30), ct) is var startedError && startedError is null)
        {
            return (local, SourceLocalStarted);
        }

        tried.Add($"starting a local server on {LocalServers.Host}:{LocalServers.PostgresPort} (data in {LocalServers.DataDirectory}/postgres): {result}");
        throw Unavailable("PostgreSQL", tried);
    }

    /// <summary>Returns null when a connection succeeds within <paramref name="patience"/>, else the last error.</summary>
    private static async Task<string?> CheckPostgresAsync(string connectionString, TimeSpan patience, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync(ct);
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(ct);
                return null;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or ArgumentException)
            {
                if (DateTime.UtcNow >= deadline || e is ArgumentException)
                {
                    return $"{e.GetType().Name}: {e.Message}";
                }
            }

            await Task.Delay(250, ct);
        }
    }

    private static async Task DropStaleDatabasesAsync(string adminConnectionString, CancellationToken ct)
    {
        // Runs that crashed leave their databases behind; drop ours once they are clearly abandoned.
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync(ct);
        var stale = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT datname FROM pg_database WHERE datname LIKE 'bstest\\_%'", connection))
        await using (var reader = await list.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var name = reader.GetString(0);
                var match = DatabaseNameTimestamp().Match(name);
                if (match.Success
                    && DateTime.TryParseExact(match.Groups[1].Value, "yyyyMMddHHmmss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var created)
                    && DateTime.UtcNow - created > StaleDatabaseAge)
                {
                    stale.Add(name);
                }
            }
        }

        foreach (var name in stale)
        {
            await DropDatabaseAsync(connection, name, ct);
        }
    }

    private static async Task DropDatabaseAsync(NpgsqlConnection connection, string name, CancellationToken ct)
    {
        try
        {
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException)
        {
            // Best effort (e.g. no FORCE before PostgreSQL 13, or still in use): stale-database cleanup retries later.
        }
    }

    private static string NewDatabaseName(string prefix)
    {
        var stamp = DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        return $"{DatabaseNamePrefix}{Sanitize(prefix, 30)}_{stamp}_{Guid.NewGuid().ToString("N")[..6]}";
    }

    [GeneratedRegex(@"_(\d{14})_[0-9a-f]{6}$")]
    private static partial Regex DatabaseNameTimestamp();

    // ------------------------------------------------------------------ RabbitMQ

    private async Task<(string Uri, string Source)> ResolveRabbitMqAsync(CancellationToken ct)
    {
        var tried = new List<string>();

        if (Environment.GetEnvironmentVariable(RabbitMqOverrideVariable) is { Length: > 0 } overridden)
        {
            if (await CheckRabbitMqAsync(overridden, TimeSpan.FromSeconds(10), ct) is { } error)
            {
                throw Unavailable("RabbitMQ", [$"{RabbitMqOverrideVariable} is set but its broker did not answer: {error}"]);
            }

            return (overridden, SourceEnvironment);
        }

        tried.Add($"{RabbitMqOverrideVariable}: not set");

        if (dockerAvailable.Value)
        {
            try
            {
                var container = new RabbitMqBuilder("rabbitmq:4-alpine").Build();
                lock (gate)
                {
                    containers.Add(container);
                }

                await container.StartAsync(ct);
                return (container.GetConnectionString(), SourceTestcontainers);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                tried.Add($"Testcontainers (rabbitmq:4-alpine): {e.GetType().Name}: {e.Message}");
            }
        }
        else
        {
            tried.Add(DockerSkippedReason());
        }

        var local = LocalServers.RabbitMqUri;
        if (await LocalServers.IsListeningAsync(LocalServers.AmqpPort, ct))
        {
            // A node found mid-boot opens its port late, so allow it a little time.
            var error = await CheckRabbitMqAsync(local, TimeSpan.FromSeconds(20), ct);
            if (error is null)
            {
                return (local, SourceLocalFound);
            }

            tried.Add($"something listens on {LocalServers.Host}:{LocalServers.AmqpPort} but an AMQP connection as guest failed: {error}");
            throw Unavailable("RabbitMQ", tried);
        }

        var result = await LocalServers.StartAsync("rabbitmq", ct);
        if (result.ExitCode == 0 && await CheckRabbitMqAsync(local, TimeSpan.FromSeconds(60), ct) is var startedError && startedError is null)
        {
            return (local, SourceLocalStarted);
        }

        tried.Add($"starting a local node on {LocalServers.Host}:{LocalServers.AmqpPort} (data and logs in {LocalServers.DataDirectory}/rabbitmq): {result}");
        throw Unavailable("RabbitMQ", tried);
    }

    private static async Task<string?> CheckRabbitMqAsync(string uri, TimeSpan patience, CancellationToken ct)
    {
        ConnectionFactory factory;
        try
        {
            factory = new ConnectionFactory
            {
                Uri = new Uri(uri),
                RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                ClientProvidedName = "batchscoring-tests-probe",
            };
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException)
        {
            return $"not a valid AMQP URI: {e.Message}";
        }

        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                await using var connection = await factory.CreateConnectionAsync(ct);
                await connection.CloseAsync(ct);
                return null;
            }
            catch (Exception e) when (e is RabbitMQ.Client.Exceptions.BrokerUnreachableException or RabbitMQ.Client.Exceptions.AuthenticationFailureException or IOException or TimeoutException)
            {
                if (DateTime.UtcNow >= deadline || e.InnerException is RabbitMQ.Client.Exceptions.AuthenticationFailureException)
                {
                    return $"{e.GetType().Name}: {Innermost(e).Message}";
                }
            }

            await Task.Delay(500, ct);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static bool DetectDocker()
    {
        if (Environment.GetEnvironmentVariable(DockerSwitchVariable) is "0" or "false")
        {
            return false;
        }

        try
        {
            // Discovery pings each configured endpoint; null means none answered (no engine).
            return TestcontainersSettings.OS.DockerEndpointAuthConfig is not null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    private static string DockerSkippedReason() =>
        Environment.GetEnvironmentVariable(DockerSwitchVariable) is "0" or "false"
            ? $"Testcontainers: skipped ({DockerSwitchVariable}={Environment.GetEnvironmentVariable(DockerSwitchVariable)})"
            : "Testcontainers: no Docker engine reachable";

    private static ServersUnavailableException Unavailable(string server, IReadOnlyList<string> tried)
    {
        var message = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"No {server} server for the integration tests. Tried, in order:");
        foreach (var attempt in tried)
        {
            message.AppendLine(CultureInfo.InvariantCulture, $"  - {attempt}");
        }

        message
            .AppendLine("Fix one of:")
            .AppendLine("  - install the servers so the tests can start their own: apt-get install rabbitmq-server postgresql")
            .AppendLine(CultureInfo.InvariantCulture, $"    (or run: {LocalServers.ScriptRelativePath} start; logs under {LocalServers.DataDirectory})")
            .AppendLine(CultureInfo.InvariantCulture, $"  - point the tests at servers you run: {PostgresOverrideVariable}='Host=…;Port=…;Username=…;Password=…' (superuser),")
            .AppendLine(CultureInfo.InvariantCulture, $"    {RabbitMqOverrideVariable}='amqp://user:pass@host:5672/vhost'")
            .Append("  - start a Docker engine (Testcontainers). See tests/README.md.");
        return new ServersUnavailableException(message.ToString());
    }

    private static string Available(string? value, Exception? error)
    {
        if (error is not null)
        {
            throw error as ServersUnavailableException
                ?? new ServersUnavailableException($"Preparing the integration test servers failed: {error}", error);
        }

        return value ?? throw new InvalidOperationException("ServerFixture has not been initialised.");
    }

    private static string Sanitize(string prefix, int maxLength)
    {
        var chars = prefix.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray();
        var text = new string(chars).Trim('_');
        if (text.Length == 0)
        {
            text = "t";
        }

        if (!char.IsAsciiLetter(text[0]))
        {
            text = "t" + text;
        }

        return text.Length > maxLength ? text[..maxLength] : text;
    }

    private static string Describe(string npgsqlConnectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(npgsqlConnectionString);
        return $"{b.Host}:{b.Port}/{b.Database}";
    }

    private static string Describe(Uri amqp) => $"{amqp.Host}:{amqp.Port}";

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    /// <summary>
    /// Shown when the test executable runs directly (xunit.runner.json enables diagnostic messages);
    /// under `dotnet test` see the output of ServerSourceTests with --output detailed.
    /// </summary>
    private static void Report(string line) => TestContext.Current.SendDiagnosticMessage(line);
}

/// <summary>Thrown by <see cref="ServerFixture"/> members when no server could be found or started.</summary>
public sealed class ServersUnavailableException : Exception
{
    public ServersUnavailableException()
    {
    }

    public ServersUnavailableException(string message)
        : base(message)
    {
    }

    public ServersUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
