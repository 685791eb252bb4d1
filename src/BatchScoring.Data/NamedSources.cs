using Npgsql;

namespace BatchScoring.Data;

/// <summary>A source name that <c>BatchScoring:Sources</c> does not configure.</summary>
public sealed class UnknownSourceException(string message) : Exception(message);

/// <summary>
/// PostgreSQL databases that SQL inputs may read, by name: configuration section <c>BatchScoring:Sources</c>, one Npgsql
/// connection string per name (<c>"Sources": { "warehouse": "Host=…;Database=dw;Username=reader" }</c>). Queries run in
/// a read-only transaction, so a source can only be read even when its user could write.
/// </summary>
public sealed class NamedSources(IEnumerable<KeyValuePair<string, string?>> sources)
{
    public const string SectionName = "BatchScoring:Sources";

    private readonly Dictionary<string, string> _sources = sources
        .Where(s => !string.IsNullOrWhiteSpace(s.Value))
        .ToDictionary(s => s.Key, s => s.Value!, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _sources.Keys;

    /// <summary>The connection string of <paramref name="name"/>; throws <see cref="UnknownSourceException"/> naming the configured ones.</summary>
    public string GetConnectionString(string name) =>
        _sources.TryGetValue(name, out var connectionString)
            ? connectionString
            : throw new UnknownSourceException(
                $"Source '{name}' is not configured: set {SectionName}:{name} to an Npgsql connection string"
                + (_sources.Count == 0 ? "." : $" (configured: {string.Join(", ", _sources.Keys.Order(StringComparer.Ordinal))})."));

    /// <summary>An open connection to <paramref name="name"/> inside a read-only transaction (the caller disposes both).</summary>
    public async Task<(NpgsqlConnection Connection, NpgsqlTransaction Transaction)> OpenReadOnlyAsync(string name, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(GetConnectionString(name));
        try
        {
            await connection.OpenAsync(cancellationToken);
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
}
