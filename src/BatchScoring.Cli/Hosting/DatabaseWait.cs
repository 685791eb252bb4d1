using BatchScoring.Cli.Commands;
using BatchScoring.Cli.Errors;
using BatchScoring.Data;
using Npgsql;

namespace BatchScoring.Cli.Hosting;

/// <summary>Migrations that wait for PostgreSQL (a database still starting, a restart) instead of failing at the first refused connection.</summary>
internal static class DatabaseWait
{
    /// <summary>Applies the migrations; an applied file that was edited is refused (exit 1), naming the file.</summary>
    public static async Task<IReadOnlyList<SchemaMigration>> MigrateAsync(NpgsqlDataSource dataSource, TimeSpan budget, Action<string> notify, CancellationToken cancellationToken)
    {
        try
        {
            return await RetryAsync(c => DatabaseMigrator.MigrateAsync(dataSource, c), budget, notify, cancellationToken);
        }
        catch (MigrationChecksumException ex)
        {
            throw new CliException(ExitCodes.Failed, ex.Message, ex);
        }
    }

    /// <summary>Runs <paramref name="action"/>, retrying while PostgreSQL is unreachable for up to <paramref name="budget"/> (then exit 7).</summary>
    public static async Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> action, TimeSpan budget, Action<string> notify, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(notify);
        var retry = new RetryPolicy(budget, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5)).Start();
        var notified = false;
        while (true)
        {
            try
            {
                return await action(cancellationToken);
            }
            catch (Exception ex) when (ErrorReporter.Describe(ex) is { ExitCode: ExitCodes.Unreachable } described)
            {
                if (!notified)
                {
                    notify($"{described.Message} Retrying for up to {budget.TotalSeconds:N0} s.");
                    notified = true;
                }

                if (!await retry.WaitAsync(cancellationToken))
                {
                    throw new CliException(ExitCodes.Unreachable, $"{described.Message} Gave up after {retry.Elapsed.TotalSeconds:N0} s.", ex);
                }
            }
        }
    }

    /// <summary>Refuses a missing or malformed connection string (exit 2) without echoing it: it holds a password.</summary>
    public static string RequirePostgres(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new CliException(ExitCodes.Usage,
                "no PostgreSQL connection string: set ConnectionStrings__Postgres (environment) or ConnectionStrings:Postgres (appsettings.json), "
                + "e.g. Host=127.0.0.1;Port=5432;Username=batchscoring;Database=batchscoring.");
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new CliException(ExitCodes.Usage, $"ConnectionStrings:Postgres is not a valid Npgsql connection string ({ex.Message}): fix ConnectionStrings__Postgres.", ex);
        }

        return connectionString;
    }

    /// <summary>Refuses a missing or malformed AMQP URI (exit 2) without echoing it.</summary>
    public static string RequireRabbitMq(string? uri)
    {
        if (string.IsNullOrWhiteSpace(uri))
        {
            throw new CliException(ExitCodes.Usage,
                "no RabbitMQ connection string: set ConnectionStrings__RabbitMq (environment) or ConnectionStrings:RabbitMq (appsettings.json), e.g. amqp://user:password@127.0.0.1:5672/.");
        }

        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("amqp" or "amqps") || parsed.Host.Length == 0)
        {
            throw new CliException(ExitCodes.Usage, "ConnectionStrings:RabbitMq is not an AMQP URI: use amqp://user:password@host:port/vhost.");
        }

        return uri;
    }
}
