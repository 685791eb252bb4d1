using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using Npgsql;

namespace BatchScoring.IntegrationTests.Data;

public sealed class DatabaseMigratorTests(ServerFixture fixture)
{
    [Fact]
    public void Migrations_are_embedded_from_schemas_sql_in_order()
    {
        var migrations = DatabaseMigrator.Migrations;
        Assert.NotEmpty(migrations);
        Assert.Equal(1, migrations[0].Version);
        Assert.Equal("scoring_core", migrations[0].Name);
        Assert.Equal(migrations.OrderBy(m => m.Version).Select(m => m.Version), migrations.Select(m => m.Version));

        // The embedded text is the file in schemas/sql (linked, not copied).
        var path = RepositoryPaths.FindUpwards(Path.Combine("schemas", "sql", "001_scoring_core.sql"));
        Assert.NotNull(path);
        var onDisk = File.ReadAllText(path);
        Assert.Equal(onDisk, migrations[0].Sql);
    }

    [Fact]
    public async Task Migrate_twice_applies_once_and_creates_the_schema()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate", ct));

        var first = await DatabaseMigrator.MigrateAsync(dataSource, ct);
        var second = await DatabaseMigrator.MigrateAsync(dataSource, ct);

        Assert.Equal(DatabaseMigrator.Migrations.Count, first.Count);
        Assert.Empty(second);
        Assert.Equal(DatabaseMigrator.Migrations.Count, await CountAsync(dataSource, "SELECT count(*) FROM scoring.schema_migrations", ct));
        var tables = await ListAsync(dataSource, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'scoring' ORDER BY 1", ct);
        Assert.Equal(["chunks", "drift_reports", "drift_samples", "failed_rows", "jobs", "model_alias_history", "model_aliases", "model_profiles", "model_versions", "schema_migrations"], tables);
        Assert.Equal(1, await CountAsync(dataSource, "SELECT count(*) FROM pg_roles WHERE rolname = 'scoring_reader' AND NOT rolcanlogin", ct));
        Assert.Equal(1, await CountAsync(dataSource, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'scoring' AND indexname = 'jobs_state_created_at_idx'", ct));
        Assert.True(await BoolAsync(dataSource, "SELECT has_table_privilege('scoring_reader', 'scoring.jobs', 'SELECT')", ct));
        Assert.False(await BoolAsync(dataSource, "SELECT has_table_privilege('scoring_reader', 'scoring.jobs', 'INSERT')", ct));

        // Tables of later migrations reach analysts through the default privileges of 001.
        Assert.True(await BoolAsync(dataSource, "SELECT has_table_privilege('scoring_reader', 'scoring.drift_reports', 'SELECT')", ct));
    }

    [Fact]
    public async Task Concurrent_migrators_do_not_conflict()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate_concurrent", ct));

        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => DatabaseMigrator.MigrateAsync(dataSource, ct), ct)));

        Assert.Equal(DatabaseMigrator.Migrations.Count, runs.Sum(r => r.Count));
        Assert.Equal(DatabaseMigrator.Migrations.Count, await CountAsync(dataSource, "SELECT count(*) FROM scoring.schema_migrations", ct));
    }

    private static async Task<long> CountAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    private static async Task<bool> BoolAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (bool)(await command.ExecuteScalarAsync(ct))!;
    }

    private static async Task<List<string>> ListAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var list = new List<string>();
        while (await reader.ReadAsync(ct))
        {
            list.Add(reader.GetString(0));
        }

        return list;
    }
}
