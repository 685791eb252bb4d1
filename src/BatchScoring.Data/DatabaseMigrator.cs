using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Npgsql;

namespace BatchScoring.Data;

/// <summary>One schema migration: a <c>NNN_name.sql</c> file from <c>schemas/sql</c>, embedded in this assembly.</summary>
public sealed record SchemaMigration(int Version, string Name, string Sql);

/// <summary>
/// Applies the SQL migrations of <c>schemas/sql</c> in version order. Each pending file runs in its own
/// transaction together with its <c>scoring.schema_migrations</c> row, under a transaction-scoped
/// advisory lock, so concurrent migrators (several workers starting at once) are safe and a second run
/// is a no-op.
/// </summary>
public static partial class DatabaseMigrator
{
    /// <summary>Key of the advisory lock that serialises migrators (per database).</summary>
    public const long AdvisoryLockKey = 0x42_53_63_6F_72_65_4D_31; // "BScoreM1"

    private const string ResourcePrefix = "BatchScoring.Data.Migrations.";

    private static readonly Lazy<IReadOnlyList<SchemaMigration>> LazyMigrations = new(LoadMigrations);

    /// <summary>The embedded migrations, in version order.</summary>
    public static IReadOnlyList<SchemaMigration> Migrations => LazyMigrations.Value;

    /// <summary>Applies pending migrations; returns the ones this call applied (empty when up to date).</summary>
    public static async Task<IReadOnlyList<SchemaMigration>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(ct);

        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            await LockAsync(connection, tx, ct);
            await using var bootstrap = new NpgsqlCommand(
                """
                CREATE SCHEMA IF NOT EXISTS scoring;
                CREATE TABLE IF NOT EXISTS scoring.schema_migrations (
                    version     integer     PRIMARY KEY,
                    name        text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                );
                """,
                connection,
                tx);
            await bootstrap.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }

        var applied = new List<SchemaMigration>();
        foreach (var migration in Migrations)
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
                INSERT INTO scoring.schema_migrations (version, name) VALUES ($1, $2)
                """,
                connection,
                tx))
            {
                record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = migration.Version });
                record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = migration.Name });
                await record.ExecuteNonQueryAsync(ct);
            }

            await tx.CommitAsync(ct);
            applied.Add(migration);
        }

        return applied;
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
