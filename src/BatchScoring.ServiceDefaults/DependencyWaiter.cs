using System.Net.Sockets;
using BatchScoring.Application;
using BatchScoring.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.ServiceDefaults;

/// <summary>Start-up options of a role: whether it applies the database migrations once PostgreSQL answers.</summary>
public sealed class StartupOptions
{
    public bool Migrate { get; set; }
}

/// <summary>
/// Waits for PostgreSQL and RabbitMQ with logged retries (backoff capped at <see cref="DependencyGate.MaxRetryDelay"/>), then migrates
/// (with <see cref="StartupOptions.Migrate"/>) and opens the <see cref="DependencyGate"/>. When both answer at once the
/// gate opens before the host finishes starting, so the services behind it start as they always did.
/// </summary>
internal sealed class DependencyWaiter(
    DependencyGate gate,
    NpgsqlDataSource dataSource,
    IConfiguration configuration,
    Microsoft.Extensions.Options.IOptions<StartupOptions> startup,
    IHostApplicationLifetime lifetime,
    ILogger<DependencyWaiter> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _waiting;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (await TryOnceAsync(cancellationToken) is null)
        {
            gate.Open();
            return;
        }

        _waiting = Task.Run(() => WaitAsync(_stopping.Token), CancellationToken.None);
    }

    private async Task WaitAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        try
        {
            for (var attempt = 2; ; attempt++)
            {
                if (await TryOnceAsync(cancellationToken) is not { } problem)
                {
                    logger.LogInformation("Dependencies reachable after {Attempts} attempts; starting", attempt);
                    gate.Open();
                    return;
                }

                logger.LogWarning("Waiting for {Dependency} (attempt {Attempt}); retrying in {Delay:0.#} s", problem, attempt, delay.TotalSeconds);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, DependencyGate.MaxRetryDelay.Ticks));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping before the dependencies came back
        }
        catch (Exception ex)
        {
            // Not an outage (e.g. a migration that cannot apply): waiting would not help.
            logger.LogCritical("Start-up failed: {Error}", ex.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    /// <summary>Null when PostgreSQL and RabbitMQ answer (and migrations are applied), else what is unreachable and why.</summary>
    private async Task<string?> TryOnceAsync(CancellationToken cancellationToken)
    {
        var postgres = await ProbePostgresAsync(cancellationToken);
        var rabbit = await ProbeRabbitMqAsync(cancellationToken);
        var problem = (postgres, rabbit) switch
        {
            (null, null) => null,
            (null, _) => rabbit,
            (_, null) => postgres,
            _ => $"{postgres}; {rabbit}",
        };
        gate.Waiting = problem ?? "";
        if (problem is null && startup.Value.Migrate)
        {
            try
            {
                await DatabaseMigrator.MigrateAsync(dataSource, cancellationToken);
                logger.LogInformation("Database schema is up to date");
            }
            catch (Exception ex) when (IsUnreachable(ex))
            {
                return gate.Waiting = $"PostgreSQL (migrating: {ex.Message})";
            }
        }

        return problem;
    }

    private async Task<string?> ProbePostgresAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return null;
        }
        catch (Exception ex) when (IsUnreachable(ex))
        {
            return $"PostgreSQL ({ex.Message})";
        }
    }

    private async Task<string?> ProbeRabbitMqAsync(CancellationToken cancellationToken)
    {
        var uri = new Uri(configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq));
        var factory = new ConnectionFactory
        {
            Uri = uri,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
            ClientProvidedName = $"batchscoring-probe:{Environment.MachineName}",
        };
        try
        {
            await using var connection = await factory.CreateConnectionAsync(cancellationToken);
            await connection.CloseAsync(cancellationToken);
            return null;
        }
        catch (Exception ex) when (ex is BrokerUnreachableException or IOException or SocketException or TimeoutException or OperationInterruptedException)
        {
            return $"RabbitMQ at {uri.Host}:{uri.Port} ({Innermost(ex).Message})";
        }
    }

    private static bool IsUnreachable(Exception ex) =>
        ex is NpgsqlException { IsTransient: true } or SocketException or TimeoutException
        || (ex is NpgsqlException && ex.InnerException is SocketException or IOException or TimeoutException)
        || (ex is PostgresException { SqlState: "57P01" or "57P02" or "57P03" });

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }

        return ex;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_waiting is not null)
        {
            await _waiting.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public void Dispose() => _stopping.Dispose();
}
