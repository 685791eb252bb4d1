using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using Npgsql;

namespace BatchScoring.IntegrationTests.Data;

/// <summary>Class fixture: a fresh database per test class, migrated, with a data source, a job store and a model store.</summary>
public sealed class DataDatabase(ServerFixture server) : IAsyncLifetime
{
    private NpgsqlDataSource? _dataSource;

    public string ConnectionString { get; private set; } = "";

    public NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("Not initialised.");

    public JobStore Jobs { get; private set; } = null!;

    public ModelStore Models { get; private set; } = null!;

    public ServerFixture Server => server;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        ConnectionString = await server.CreateDatabaseAsync("data", ct);
        _dataSource = NpgsqlDataSource.Create(ConnectionString);
        await DatabaseMigrator.MigrateAsync(_dataSource, ct);
        Jobs = new JobStore(_dataSource);
        Models = new ModelStore(_dataSource);
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }

    /// <summary>A new EF Core context over the database (caller disposes).</summary>
    public ScoringDbContext CreateContext() => new(ScoringDbContext.CreateOptions(DataSource));

    public async Task<T> ScalarAsync<T>(string sql, CancellationToken ct, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(ct);
    }
}
