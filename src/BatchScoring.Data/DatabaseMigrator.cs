using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace BatchScoring.Data;

/// <summary>One schema migration: a <c>NNN_name.sql</c> file from <c>schemas/sql</c>, embedded in this assembly.</summary>
public sealed record SchemaMigration(int Version, string Name, string Sql)
{
    public string FileName => $"{Version:D3}_{Name}.sql";

    /// <summary>SHA-256 (lower-case hex) of the file's text with line endings as LF, so a checkout with CRLF matches.</summary>
    public string Checksum => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Sql.ReplaceLineEndings("\n"))));
}

/// <summary>The database lacks migrations of this build (<see cref="DatabaseMigrator.EnsureMigratedAsync"/>).</summary>
public sealed class DatabaseNotMigratedException(IReadOnlyList<MigrationStatus> pending)
    : Exception(
        $"the database is not migrated yet ({pending.Count} migration{(pending.Count == 1 ? "" : "s")} pending, from {pending[0].Version:D3} {pending[0].Name}): "
        + "run batchscore migrate or start a role with --migrate");

/// <summary>An applied migration whose file no longer has the content it was applied with.</summary>
public sealed class MigrationChecksumException(SchemaMigration migration, string recordedChecksum)
    : Exception(
        $"migration {migration.FileName} was changed after it was applied (SHA-256 {Short(migration.Checksum)}, applied as {Short(recordedChecksum)}): "
        + "restore the file as it was and put the change in a new migration; nothing was migrated.")
{
    public SchemaMigration Migration { get; } = migration;

    public string RecordedChecksum { get; } = recordedChecksum;

    private static string Short(string checksum) => checksum.Length > 12 ? checksum[..12] : checksum;
}

public enum MigrationState
{
    Applied,
    Pending,

    /// <summary>Recorded in the database but not in this build (the database was migrated by a newer version).</summary>
    Unknown,
}

public enum ChecksumState
{
    /// <summary>The file matches the checksum recorded when it was applied.</summary>
    Ok,

    /// <summary>The file differs from what was applied: <see cref="DatabaseMigrator.MigrateAsync"/> refuses to run.</summary>
    Changed,

    /// <summary>Applied before checksums were recorded; the next migrate records the file's.</summary>
    NotRecorded,

    /// <summary>Nothing to compare: pending, or not in this build.</summary>
    None,
}

/// <summary>One line of <see cref="DatabaseMigrator.StatusAsync"/>.</summary>
public sealed record MigrationStatus(
    int Version, string Name, MigrationState State, DateTimeOffset? AppliedAt, ChecksumState Checksum, string? FileChecksum, string? RecordedChecksum);

/// <summary>
/// Applies the SQL migrations of <c>schemas/sql</c> in version order. Each pending file runs in its own
/// transaction together with its <c>scoring.schema_migrations</c> row (and the file's SHA-256), under a
/// transaction-scoped advisory lock, so concurrent migrators (several workers starting at once) are safe and a
/// second run is a no-op. A file changed after it was applied is refused before anything runs.
/// </summary>
public static partial class DatabaseMigrator
{
    /// <summary>Key of the advisory lock that serialises migrators (per database).</summary>
    public const long AdvisoryLockKey = 0x42_53_63_6F_72_65_4D_31; // "BScoreM1"

    private const string ResourcePrefix = "BatchScoring.Data.Migrations.";

    private static readonly Lazy<IReadOnlyList<SchemaMigration>> LazyMigrations = new(LoadMigrations);

    /// <summary>The embedded migrations, in version order.</summary>
    public static IReadOnlyList<SchemaMigration> Migrations => LazyMigrations.Value;

    /// <summary>
    /// Applies pending migrations; returns the ones this call applied (empty when up to date). Throws
    /// <see cref="MigrationChecksumException"/>, having changed nothing, when an applied file was edited.
    /// </summary>
    public static Task<IReadOnlyList<SchemaMigration>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct) =>
        MigrateAsync(dataSource, Migrations, ct);

    /// <summary>Applies <paramref name="migrations"/> (in version order) instead of the embedded ones; for tests.</summary>
    public static async Task<IReadOnlyList<SchemaMigration>> MigrateAsync(
        NpgsqlDataSource dataSource, IReadOnlyList<SchemaMigration> migrations, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(migrations);
        await using var connection = await dataSource.OpenConnectionAsync(ct);

        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            await LockAsync(connection, tx, ct);
            await using (var bootstrap = new NpgsqlCommand(
                """
                CREATE SCHEMA IF NOT EXISTS scoring;
                CREATE TABLE IF NOT EXISTS scoring.schema_migrations (
                    version     integer     PRIMARY KEY,
                    name        text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now(),
                    checksum    text
                );
                ALTER TABLE scoring.schema_migrations ADD COLUMN IF NOT EXISTS checksum text;
                """,
                connection,
                tx))
            {
                await bootstrap.ExecuteNonQueryAsync(ct);
            }

            await VerifyAndRecordChecksumsAsync(connection, tx, migrations, ct);
            await tx.CommitAsync(ct);
        }

        var applied = new List<SchemaMigration>();
        foreach (var migration in migrations)
        {
            await using var tx = await connection.BeginTransactionAsync(ct);
            await LockAsync(connection, tx, ct);

            // Checked after taking the lock: another process may have applied it meanwhile.
            await using (var check = new NpgsqlCommand(
                """
                SELECT EXISTS (SELECT 1 FROM scoring.schema_migrations WHERE version = $1)
                """,
                connection,
                tx))
            {
                check.Parameters.Add(new NpgsqlParameter<int> { TypedValue = migration.Version });
                if ((bool)(await check.ExecuteScalarAsync(ct))!)
                {
                    await tx.RollbackAsync(ct);
                    continue;
                }
            }

            await using (var apply = new NpgsqlCommand(migration.Sql, connection, tx))
            {
                await apply.ExecuteNonQueryAsync(ct);
            }

            await using (var record = new NpgsqlCommand(
                """
                INSERT INTO scoring.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)
                """,
                connection,
                tx))
            {
                record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = migration.Version });
                record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = migration.Name });
                record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = migration.Checksum });
                await record.ExecuteNonQueryAsync(ct);
            }

            await tx.CommitAsync(ct);
            applied.Add(migration);
        }

        return applied;
    }

    /// <summary>
    /// Every migration of this build and every one the database recorded, in version order; reads only (a database
    /// never migrated lists everything as pending).
    /// </summary>
    public static Task<IReadOnlyList<MigrationStatus>> StatusAsync(NpgsqlDataSource dataSource, CancellationToken ct) =>
        StatusAsync(dataSource, Migrations, ct);

    /// <summary>Throws <see cref="DatabaseNotMigratedException"/> when a migration of this build is pending; reads only.</summary>
    public static async Task EnsureMigratedAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        var pending = (await StatusAsync(dataSource, ct)).Where(m => m.State == MigrationState.Pending).ToList();
        if (pending.Count > 0)
        {
            throw new DatabaseNotMigratedException(pending);
        }
    }

    public static async Task<IReadOnlyList<MigrationStatus>> StatusAsync(
        NpgsqlDataSource dataSource, IReadOnlyList<SchemaMigration> migrations, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(migrations);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var exists = new NpgsqlCommand("SELECT to_regclass('scoring.schema_migrations') IS NOT NULL", connection);
        var recorded = (bool)(await exists.ExecuteScalarAsync(ct))!
            ? await ReadAppliedAsync(connection, null, ct)
            : [];

        var statuses = new List<MigrationStatus>();
        foreach (var migration in migrations)
        {
            if (!recorded.TryGetValue(migration.Version, out var row))
            {
                statuses.Add(new MigrationStatus(migration.Version, migration.Name, MigrationState.Pending, null, ChecksumState.None, migration.Checksum, null));
                continue;
            }

            var checksum = row.Checksum is null ? ChecksumState.NotRecorded
                : row.Checksum == migration.Checksum ? ChecksumState.Ok
                : ChecksumState.Changed;
            statuses.Add(new MigrationStatus(migration.Version, migration.Name, MigrationState.Applied, row.AppliedAt, checksum, migration.Checksum, row.Checksum));
        }

        var known = migrations.Select(m => m.Version).ToHashSet();
        statuses.AddRange(recorded.Values
            .Where(r => !known.Contains(r.Version))
            .Select(r => new MigrationStatus(r.Version, r.Name, MigrationState.Unknown, r.AppliedAt, ChecksumState.None, null, r.Checksum)));
        statuses.Sort((a, b) => a.Version.CompareTo(b.Version));
        return statuses;
    }

    /// <summary>Refuses an applied file that changed; records the checksum of files applied before checksums existed.</summary>
    private static async Task VerifyAndRecordChecksumsAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<SchemaMigration> migrations, CancellationToken ct)
    {
        var recorded = await ReadAppliedAsync(connection, tx, ct);
        var unrecorded = new List<SchemaMigration>();
        foreach (var migration in migrations)
        {
            if (!recorded.TryGetValue(migration.Version, out var row))
            {
                continue;
            }

            if (row.Checksum is null)
            {
                unrecorded.Add(migration);
            }
            else if (row.Checksum != migration.Checksum)
            {
                throw new MigrationChecksumException(migration, row.Checksum);
            }
        }

        foreach (var migration in unrecorded)
        {
            await using var update = new NpgsqlCommand(
                """
                UPDATE scoring.schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL
                """,
                connection,
                tx);
            update.Parameters.Add(new NpgsqlParameter<int> { TypedValue = migration.Version });
            update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = migration.Checksum });
            await update.ExecuteNonQueryAsync(ct);
        }
    }

    private sealed record AppliedRow(int Version, string Name, DateTimeOffset AppliedAt, string? Checksum);

    private static async Task<Dictionary<int, AppliedRow>> ReadAppliedAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken ct)
    {
        // Through jsonb: a database migrated before checksums existed has no checksum column, and status must not add it.
        await using var select = new NpgsqlCommand(
            """
            SELECT m.version, m.name, m.applied_at, to_jsonb(m) ->> 'checksum' FROM scoring.schema_migrations AS m
            """,
            connection,
            tx);
        await using var reader = await select.ExecuteReaderAsync(ct);
        var rows = new Dictionary<int, AppliedRow>();
        while (await reader.ReadAsync(ct))
        {
            var row = new AppliedRow(
                reader.GetInt32(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.IsDBNull(3) ? null : reader.GetString(3));
            rows[row.Version] = row;
        }

        return rows;
    }

    private static async Task LockAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT pg_advisory_xact_lock($1)
            """,
            connection,
            tx);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = AdvisoryLockKey });
        await command.ExecuteNonQueryAsync(ct);
    }

    private static List<SchemaMigration> LoadMigrations()
    {
        var assembly = typeof(DatabaseMigrator).Assembly;
        var migrations = new List<SchemaMigration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var fileName = resource[ResourcePrefix.Length..];
            var match = FileNamePattern().Match(fileName);
            if (!match.Success)
            {
                throw new InvalidOperationException($"Migration resource '{fileName}' must be named NNN_name.sql.");
            }

            migrations.Add(new SchemaMigration(
                int.Parse(match.Groups["version"].Value, NumberStyles.None, CultureInfo.InvariantCulture),
                match.Groups["name"].Value,
                ReadResource(assembly, resource)));
        }

        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < migrations.Count; i++)
        {
            if (migrations[i].Version == migrations[i - 1].Version)
            {
                throw new InvalidOperationException($"Two migrations have version {migrations[i].Version}: '{migrations[i - 1].Name}' and '{migrations[i].Name}'.");
            }
        }

        return migrations;
    }

    private static string ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Embedded migration '{name}' is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    [GeneratedRegex(@"^(?<version>[0-9]{3,})_(?<name>[a-z0-9_]+)\.sql$")]
    private static partial Regex FileNamePattern();
}
