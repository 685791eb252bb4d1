using System.Collections.Concurrent;
using Npgsql;

namespace BatchScoring.Data;

/// <summary>
/// PostgreSQL databases that jobs may read from, by name: configuration <c>BatchScoring:Sources:&lt;name&gt;</c> holds an
/// Npgsql connection string. Requests name a source, never a connection string, so credentials stay in configuration.
/// One <see cref="NpgsqlDataSource"/> (connection pool) per source, created on first use.
/// </summary>
public sealed class NamedSources(IReadOnlyDictionary<string, string> connectionStrings) : IAsyncDisposable
{
    public const string SectionName = "BatchScoring:Sources";

    private readonly Dictionary<string, string> _connectionStrings = new(connectionStrings, StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, Lazy<NpgsqlDataSource>> _dataSources = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyCollection<string> Names => _connectionStrings.Keys;

    public bool Contains(string name) => _connectionStrings.ContainsKey(name);

    /// <summary>The source's data source; throws <see cref="UnknownSourceException"/> for a name that is not configured.</summary>
    public NpgsqlDataSource Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_connectionStrings.TryGetValue(name, out var connectionString) || string.IsNullOrWhiteSpace(connectionString))
        {
            throw new UnknownSourceException(name, Names);
        }

        return _dataSources.GetOrAdd(name, _ => new Lazy<NpgsqlDataSource>(() => NpgsqlDataSource.Create(connectionString))).Value;
    }

    /// <summary>
    /// An open connection to <paramref name="name"/> inside a repeatable-read, read-only transaction (the caller disposes
    /// both), so a source can only be read even when its user could write.
    /// </summary>
    public async Task<(NpgsqlConnection Connection, NpgsqlTransaction Transaction)> OpenReadOnlyAsync(string name, CancellationToken cancellationToken)
    {
        var connection = await Get(name).OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
            await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection, transaction))
            {
                await readOnly.ExecuteNonQueryAsync(cancellationToken);
            }

            return (connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var source in _dataSources.Values.Where(s => s.IsValueCreated))
        {
            await source.Value.DisposeAsync();
        }

        _dataSources.Clear();
    }
}

/// <summary>A request named a source that is not configured (<c>BatchScoring:Sources:&lt;name&gt;</c>).</summary>
public sealed class UnknownSourceException(string name, IReadOnlyCollection<string> known)
    : Exception(
        $"Source '{name}' is not configured on the service (add {NamedSources.SectionName}:{name}, an Npgsql connection string); "
        + (known.Count == 0 ? "no sources are configured." : $"configured sources: {string.Join(", ", known.Order(StringComparer.Ordinal))}."))
{
    public string Name { get; } = name;
}
