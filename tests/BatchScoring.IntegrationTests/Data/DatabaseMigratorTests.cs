using System.Security.Cryptography;
using System.Text;
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
        Assert.Equal(["challenger_chunk_stats", "challenger_comparisons", "chunks", "deleted_model_versions", "drift_reports", "drift_samples", "failed_rows", "jobs", "labels", "model_alias_canaries", "model_alias_history", "model_aliases", "model_profiles", "model_versions", "performance_reports", "request_redeliveries", "schedule_runs", "schema_migrations"], tables);
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

    [Fact]
    public async Task Each_applied_migration_records_the_SHA256_of_its_file()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate_checksums", ct));

        await DatabaseMigrator.MigrateAsync(dataSource, ct);

        var recorded = await ListAsync(dataSource, "SELECT version::text || ' ' || checksum FROM scoring.schema_migrations ORDER BY version", ct);
        var directory = Path.GetDirectoryName(RepositoryPaths.FindUpwards(Path.Combine("schemas", "sql", "001_scoring_core.sql")))!;
        var files = Directory.GetFiles(directory, "*.sql").Order(StringComparer.Ordinal).Select(f =>
            $"{int.Parse(Path.GetFileName(f)[..3], System.Globalization.CultureInfo.InvariantCulture)} "
            + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(File.ReadAllText(f).ReplaceLineEndings("\n")))));
        Assert.Equal(files, recorded);
        Assert.All(await DatabaseMigrator.StatusAsync(dataSource, ct), s => Assert.Equal((MigrationState.Applied, ChecksumState.Ok), (s.State, s.Checksum)));
    }

    [Fact]
    public async Task A_migration_changed_after_it_was_applied_is_refused_naming_the_file_and_nothing_runs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate_changed", ct));
        await DatabaseMigrator.MigrateAsync(dataSource, DatabaseMigrator.Migrations.Take(3).ToArray(), ct);
        var edited = DatabaseMigrator.Migrations.Select(m => m.Version == 2 ? m with { Sql = m.Sql + "\n-- edited\n" } : m).ToArray();

        var error = await Assert.ThrowsAsync<MigrationChecksumException>(() => DatabaseMigrator.MigrateAsync(dataSource, edited, ct));

        Assert.Contains("002_drift.sql", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Equal(3, await CountAsync(dataSource, "SELECT count(*) FROM scoring.schema_migrations", ct));
        var status = await DatabaseMigrator.StatusAsync(dataSource, edited, ct);
        Assert.Equal(ChecksumState.Changed, status.Single(s => s.Version == 2).Checksum);
        Assert.Equal(ChecksumState.Ok, status.Single(s => s.Version == 1).Checksum);
        Assert.Equal(MigrationState.Pending, status.Single(s => s.Version == 4).State);

        // Line endings alone are not a change (a checkout with CRLF).
        var crlf = DatabaseMigrator.Migrations.Select(m => m with { Sql = m.Sql.ReplaceLineEndings("\r\n") }).ToArray();
        Assert.Equal(DatabaseMigrator.Migrations.Count - 3, (await DatabaseMigrator.MigrateAsync(dataSource, crlf, ct)).Count);
    }

    [Fact]
    public async Task A_database_migrated_before_checksums_gets_them_recorded_by_the_next_migrate()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate_legacy", ct));
        await DatabaseMigrator.MigrateAsync(dataSource, ct);
        await ExecuteAsync(dataSource, "ALTER TABLE scoring.schema_migrations DROP COLUMN checksum", ct);

        var before = await DatabaseMigrator.StatusAsync(dataSource, ct);
        Assert.All(before, s => Assert.Equal(ChecksumState.NotRecorded, s.Checksum));
        Assert.Equal(0, await CountAsync(dataSource, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'scoring' AND table_name = 'schema_migrations' AND column_name = 'checksum'", ct));

        Assert.Empty(await DatabaseMigrator.MigrateAsync(dataSource, ct));

        var after = await DatabaseMigrator.StatusAsync(dataSource, ct);
        Assert.All(after, s => Assert.Equal(ChecksumState.Ok, s.Checksum));
        Assert.Equal(DatabaseMigrator.Migrations.Select(m => m.Checksum), after.Select(s => s.RecordedChecksum));
    }

    [Fact]
    public async Task Status_lists_pending_and_unknown_migrations_and_changes_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("migrate_status", ct));

        var fresh = await DatabaseMigrator.StatusAsync(dataSource, ct);
        Assert.Equal(DatabaseMigrator.Migrations.Select(m => m.Version), fresh.Select(s => s.Version));
        Assert.All(fresh, s => Assert.Equal(MigrationState.Pending, s.State));
        Assert.False(await BoolAsync(dataSource, "SELECT to_regnamespace('scoring') IS NOT NULL", ct));

        await DatabaseMigrator.MigrateAsync(dataSource, DatabaseMigrator.Migrations.Take(2).ToArray(), ct);
        await ExecuteAsync(dataSource, "INSERT INTO scoring.schema_migrations (version, name, checksum) VALUES (999, 'from_a_newer_version', 'abc')", ct);
        var partial = await DatabaseMigrator.StatusAsync(dataSource, ct);

        Assert.Equal([MigrationState.Applied, MigrationState.Applied], partial.Take(2).Select(s => s.State));
        Assert.All(partial.Take(2), s => Assert.NotNull(s.AppliedAt));
        Assert.All(partial.Skip(2).SkipLast(1), s => Assert.Equal(MigrationState.Pending, s.State));
        Assert.Equal((999, MigrationState.Unknown), (partial[^1].Version, partial[^1].State));
    }

    /// <summary>A drift sample of a job chunk (256 rows × 65 columns) is stored lz4-compressed: pglz cost the server more CPU than parsing it.</summary>
    [Fact]
    public async Task Drift_samples_are_compressed_with_lz4_where_the_server_has_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dataSource = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("drift_lz4", ct));
        await DatabaseMigrator.MigrateAsync(dataSource, ct);

        var random = new Random(3);
        var sample = "{" + string.Join(',', Enumerable.Range(0, 65).Select(c =>
            $"\"f_{c:D3}\":[{string.Join(',', Enumerable.Range(0, 256).Select(_ => random.NextSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]")) + "}";
        await using (var insert = dataSource.CreateCommand("INSERT INTO scoring.drift_samples (model_name, model_version, source, row_count, columns) VALUES ('churn', 1, 'job', 256, $1::jsonb)"))
        {
            insert.Parameters.AddWithValue(sample);
            await insert.ExecuteNonQueryAsync(ct);
        }

        var stored = await ListAsync(dataSource, "SELECT coalesce(pg_column_compression(columns), 'none') FROM scoring.drift_samples", ct);
        Assert.Equal([await ServerHasLz4Async(dataSource, ct) ? "lz4" : "pglz"], stored);
    }

    private static async Task<bool> ServerHasLz4Async(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        try
        {
            await ExecuteAsync(dataSource, "CREATE TEMP TABLE lz4_probe (value text COMPRESSION lz4)", ct);
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.FeatureNotSupported)
        {
            return false;
        }
    }

    /// <summary>Migration 009 holds the tables Quartz 4.7.3 would provision for itself, and accepts a database where it did.</summary>
    [Fact]
    public async Task Quartz_tables_come_from_migration_009_as_Quartz_would_create_them()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var provisioned = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("quartz_provisioned", ct));
        await using var migrated = NpgsqlDataSource.Create(await fixture.CreateDatabaseAsync("quartz_migrated", ct));
        await ProvisionAsQuartzAsync(provisioned, ct);

        await DatabaseMigrator.MigrateAsync(migrated, ct);

        Assert.Equal(15, (await QuartzSchemaAsync(migrated, ct)).Count(line => line.StartsWith("table ", StringComparison.Ordinal)));
        Assert.Equal(await QuartzSchemaAsync(provisioned, ct), await QuartzSchemaAsync(migrated, ct));

        // A database whose scheduler made the tables at start-up (earlier versions): 009 keeps them as they are.
        var before = await QuartzSchemaAsync(provisioned, ct);
        await ExecuteAsync(provisioned, "INSERT INTO qrtz_locks (sched_name, lock_name) VALUES ('batchscoring', 'TRIGGER_ACCESS')", ct);
        Assert.Equal(DatabaseMigrator.Migrations.Count, (await DatabaseMigrator.MigrateAsync(provisioned, ct)).Count);
        Assert.Equal(before, await QuartzSchemaAsync(provisioned, ct));
        Assert.Equal(1, await CountAsync(provisioned, "SELECT count(*) FROM qrtz_locks", ct));
    }

    /// <summary>Runs the script Quartz 4.7.3 embeds for <c>SchemaProvisioning.CreateIfMissing</c>, as it does (default prefix).</summary>
    private static async Task ProvisionAsQuartzAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var stream = typeof(Quartz.IScheduler).Assembly.GetManifestResourceStream("Quartz.Impl.AdoJobStore.Schema.create_postgres.sql");
        Assert.NotNull(stream);
        using var reader = new StreamReader(stream);
        var script = (await reader.ReadToEndAsync(ct)).Replace("{0}", "QRTZ_", StringComparison.Ordinal).Replace("{1}", "QRTZ_", StringComparison.Ordinal);
        // Quartz sends each piece between lines reading exactly "--;;" as one command.
        foreach (var statement in script.ReplaceLineEndings("\n").Split("\n--;;\n"))
        {
            await ExecuteAsync(dataSource, statement, ct);
        }
    }

    private static async Task<List<string>> QuartzSchemaAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        var lines = await ListAsync(dataSource, "SELECT 'table ' || table_name FROM information_schema.tables WHERE table_name LIKE 'qrtz%' ORDER BY 1", ct);
        lines.AddRange(await ListAsync(
            dataSource,
            """
            SELECT format('column %s.%s %s %s %s', table_name, column_name, coalesce(character_maximum_length::text, data_type), is_nullable, coalesce(column_default, ''))
            FROM information_schema.columns WHERE table_name LIKE 'qrtz%' ORDER BY table_name, ordinal_position
            """,
            ct));
        lines.AddRange(await ListAsync(dataSource, "SELECT 'index ' || indexdef FROM pg_indexes WHERE tablename LIKE 'qrtz%' ORDER BY indexname", ct));
        lines.AddRange(await ListAsync(
            dataSource,
            "SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid::regclass::text LIKE 'qrtz%' ORDER BY 1",
            ct));
        return lines;
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(ct);
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
