using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>The version is archived: kept for lineage, but not submitted, served or aliased.</summary>
public sealed class ModelVersionArchivedException(string modelName, int version, string consequence)
    : InvalidOperationException($"Model '{modelName}' v{version} is archived; {consequence}. Unarchive it (batchscore models unarchive) or use another version.")
{
    public string ModelName { get; } = modelName;

    public int Version { get; } = version;
}

/// <summary>An alias moved between the check of a move and the move itself.</summary>
public sealed class AliasMovedException(string message) : InvalidOperationException(message);

/// <summary>Something still uses the version (an alias, a queued or running job, a schedule); the message lists what.</summary>
public sealed class ModelVersionInUseException(string message) : InvalidOperationException(message);

/// <summary>Archiving and deleting versions; each is serialised with registration and alias moves of the same model.</summary>
public sealed partial class ModelStore
{
    /// <summary>
    /// Marks the version archived (idempotent: an archived version stays as it was) and returns it. Throws
    /// <see cref="KeyNotFoundException"/> when it does not exist and <see cref="ModelVersionInUseException"/> while an
    /// alias points at it.
    /// </summary>
    public async Task<ModelVersionEntity> ArchiveAsync(string modelName, int version, string? archivedBy, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockModelAsync(connection, tx, modelName, ct);
        _ = await GetModelVersionAsync(modelName, version, ct) ?? throw new KeyNotFoundException($"Model '{modelName}' has no version {version}.");
        var aliases = await AliasesOfAsync(connection, tx, modelName, version, ct);
        if (aliases.Count > 0)
        {
            throw new ModelVersionInUseException(
                $"Model '{modelName}' v{version} is what {Aliases(aliases)} points at; move {(aliases.Count == 1 ? "it" : "them")} to another version first. Nothing was archived.");
        }

        await using (var update = new NpgsqlCommand(
            """
            UPDATE scoring.model_versions SET archived_at = now(), archived_by = $3
            WHERE model_name = $1 AND version = $2 AND archived_at IS NULL
            """,
            connection,
            tx))
        {
            update.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
            update.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
            update.Parameters.Add(DbParameter.Of(archivedBy, NpgsqlDbType.Text));
            await update.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return (await GetModelVersionAsync(modelName, version, ct))!;
    }

    /// <summary>Clears the archived mark (idempotent) and returns the version; <see cref="KeyNotFoundException"/> when it does not exist.</summary>
    public async Task<ModelVersionEntity> UnarchiveAsync(string modelName, int version, CancellationToken ct)
    {
        await using var update = dataSource.CreateCommand(
            """
            UPDATE scoring.model_versions SET archived_at = NULL, archived_by = NULL WHERE model_name = $1 AND version = $2
            """);
        update.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        update.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        if (await update.ExecuteNonQueryAsync(ct) == 0)
        {
            throw new KeyNotFoundException($"Model '{modelName}' has no version {version}.");
        }

        return (await GetModelVersionAsync(modelName, version, ct))!;
    }

    /// <summary>
    /// Deletes the version's row (and its reference profile) and records it in <c>deleted_model_versions</c>; returns the
    /// deleted row. Refused with <see cref="ModelVersionInUseException"/>, changing nothing, while an alias points at it, a
    /// queued or running job scores with it, or another table still refers to it. The file is not touched here: see
    /// <see cref="CountFileReferencesAsync"/>.
    /// </summary>
    public async Task<ModelVersionEntity> DeleteVersionAsync(string modelName, int version, string? deletedBy, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockModelAsync(connection, tx, modelName, ct);
        var row = await GetModelVersionAsync(modelName, version, ct) ?? throw new KeyNotFoundException($"Model '{modelName}' has no version {version}.");

        var uses = (await AliasesOfAsync(connection, tx, modelName, version, ct)).Select(a => $"alias '{a}'").ToList();
        await using (var jobs = new NpgsqlCommand(
            """
            SELECT id, state FROM scoring.jobs
            WHERE model_name = $1 AND model_version = $2 AND state IN ('queued', 'running')
            ORDER BY created_at LIMIT 6
            """,
            connection,
            tx))
        {
            jobs.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
            jobs.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
            await using var reader = await jobs.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                uses.Add($"{reader.GetString(1)} job {reader.GetGuid(0)}");
            }
        }

        if (uses.Count > 0)
        {
            throw new ModelVersionInUseException(InUse(modelName, version, uses));
        }

        // Three statements, one transaction: positional parameters allow one statement per command.
        string[] statements =
        [
            "DELETE FROM scoring.model_profiles WHERE model_name = $1 AND model_version = $2",
            "DELETE FROM scoring.model_versions WHERE model_name = $1 AND version = $2",
            """
            INSERT INTO scoring.deleted_model_versions (model_name, version, tenant, sha256, created_at, deleted_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (model_name, version) DO NOTHING
            """,
        ];
        foreach (var sql in statements)
        {
            await using var delete = new NpgsqlCommand(sql, connection, tx);
            delete.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
            delete.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
            if (sql.Contains("INSERT", StringComparison.Ordinal))
            {
                delete.Parameters.Add(DbParameter.Of(row.Tenant, NpgsqlDbType.Text));
                delete.Parameters.Add(DbParameter.Of(row.Sha256, NpgsqlDbType.Text));
                delete.Parameters.Add(DbParameter.Of(row.CreatedAt, NpgsqlDbType.TimestampTz));
                delete.Parameters.Add(DbParameter.Of(deletedBy, NpgsqlDbType.Text));
            }

            try
            {
                await delete.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
            {
                // A table added later (labels, comparisons ...) that refers to the version by foreign key.
                throw new ModelVersionInUseException(InUse(modelName, version, [$"rows that refer to it ({e.MessageText})"]));
            }
        }

        await tx.CommitAsync(ct);
        return row;
    }

    /// <summary>How many versions (of any model or tenant) still store their bytes at <paramref name="storagePath"/> or under <paramref name="sha256"/>.</summary>
    public async Task<long> CountFileReferencesAsync(string storagePath, string sha256, CancellationToken ct)
    {
        await using var count = dataSource.CreateCommand("SELECT count(*) FROM scoring.model_versions WHERE storage_path = $1 OR sha256 = $2");
        count.Parameters.Add(DbParameter.Of(storagePath, NpgsqlDbType.Text));
        count.Parameters.Add(DbParameter.Of(sha256, NpgsqlDbType.Text));
        return (long)(await count.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Holds a lock on the stored file of <paramref name="sha256"/> until disposed, so that a registration that finds the
    /// file present (and then adds a row for it) and a deletion that finds no row (and then removes the file) never interleave.
    /// </summary>
    public async Task<IAsyncDisposable> LockFileAsync(string sha256, CancellationToken ct)
    {
        var connection = await dataSource.OpenConnectionAsync(ct);
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_advisory_lock(hashtext('batchscoring.model_file'), hashtext($1))", connection);
            command.Parameters.Add(DbParameter.Of(sha256, NpgsqlDbType.Text));
            await command.ExecuteNonQueryAsync(ct);
            return new FileLock(connection, sha256);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static async Task LockModelAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string modelName, CancellationToken ct)
    {
        await using var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('batchscoring.model_version'), hashtext($1))", connection, tx);
        lockCommand.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        await lockCommand.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<string>> AliasesOfAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string modelName, int version, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT alias FROM scoring.model_aliases WHERE model_name = $1 AND version = $2
            UNION SELECT alias || ' (canary)' FROM scoring.model_alias_canaries WHERE model_name = $1 AND canary_version = $2
            ORDER BY 1
            """, connection, tx);
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        var aliases = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            aliases.Add(reader.GetString(0));
        }

        return aliases;
    }

    private static string Aliases(IReadOnlyList<string> aliases) =>
        (aliases.Count == 1 ? "alias " : "aliases ") + string.Join(", ", aliases.Select(a => $"'{a}'"));

    public static string InUse(string modelName, int version, IReadOnlyList<string> uses) =>
        $"Model '{modelName}' v{version} is in use by {string.Join(", ", uses)}; move the aliases, let the jobs finish (or cancel them) and change the schedules first. Nothing was deleted.";

    private sealed class FileLock(NpgsqlConnection connection, string sha256) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock(hashtext('batchscoring.model_file'), hashtext($1))", connection);
                command.Parameters.Add(DbParameter.Of(sha256, NpgsqlDbType.Text));
                await command.ExecuteNonQueryAsync();
            }
            finally
            {
                // Closing the session releases the lock anyway; the unlock only returns the pooled connection clean.
                await connection.DisposeAsync();
            }
        }
    }
}
