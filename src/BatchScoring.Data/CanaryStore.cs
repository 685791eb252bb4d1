using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>A running canary: <paramref name="Percent"/> % of an alias's score request rows go to <paramref name="CanaryVersion"/>.</summary>
public sealed record AliasCanary(string Model, string Alias, int CanaryVersion, int Percent, DateTimeOffset StartedAt);

/// <summary>One row of <c>scoring.model_alias_history</c> as workers read it to warm what an alias now points at.</summary>
public sealed record RecordedAliasMove(long Id, string Model, string Alias, int Version, int? CanaryVersion);

/// <summary>
/// Canary splits of aliases (<c>scoring.model_alias_canaries</c>, migration 012) and the alias moves workers follow.
/// A plain move (<see cref="ModelStore.SetAliasAsync"/>) ends a canary in the database itself (a trigger on the history).
/// </summary>
public sealed class CanaryStore(NpgsqlDataSource dataSource)
{
    /// <summary>The channel a committed alias move is announced on (payload: the history row id).</summary>
    public const string AliasMovedChannel = "batchscoring_alias_moved";

    /// <summary>
    /// Points <paramref name="alias"/> at <paramref name="version"/> and starts (or changes) its canary on
    /// <paramref name="canaryVersion"/> with <paramref name="percent"/> % of rows, in one transaction recorded in the
    /// alias history. Throws <see cref="KeyNotFoundException"/> when a version does not exist.
    /// </summary>
    public async Task SetCanaryAsync(
        string modelName, string alias, int version, int canaryVersion, int percent, CancellationToken ct, string? changedBy = null, bool forced = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ModelStore.ValidateAlias(alias);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using var command = new NpgsqlCommand(
            """
            WITH previous AS (
                SELECT a.version, c.canary_version
                FROM scoring.model_aliases a LEFT JOIN scoring.model_alias_canaries c USING (model_name, alias)
                WHERE a.model_name = $1 AND a.alias = $2 FOR UPDATE OF a
            ), moved AS (
                INSERT INTO scoring.model_aliases (model_name, alias, version) VALUES ($1, $2, $3)
                ON CONFLICT (model_name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()
                RETURNING 1
            )
            SELECT (SELECT version FROM previous), (SELECT canary_version FROM previous), (SELECT count(*) FROM moved)
            """,
            connection,
            tx);
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        int? previousVersion;
        int? previousCanary;
        try
        {
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            previousVersion = reader.IsDBNull(0) ? null : reader.GetInt32(0);
            previousCanary = reader.IsDBNull(1) ? null : reader.GetInt32(1);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            throw new KeyNotFoundException($"Model '{modelName}' has no version {version}; alias '{alias}' was not changed.", e);
        }

        await using var canary = new NpgsqlCommand(
            """
            WITH canary AS (
                INSERT INTO scoring.model_alias_canaries (model_name, alias, canary_version, canary_percent) VALUES ($1, $2, $3, $4)
                ON CONFLICT (model_name, alias) DO UPDATE SET canary_version = EXCLUDED.canary_version, canary_percent = EXCLUDED.canary_percent,
                    started_at = CASE WHEN model_alias_canaries.canary_version = EXCLUDED.canary_version THEN model_alias_canaries.started_at ELSE now() END
                RETURNING 1
            )
            INSERT INTO scoring.model_alias_history (model_name, alias, version, previous_version, canary_version, canary_percent, ended_canary_version, changed_by, forced)
            SELECT $1, $2, $5, $6, $3, $4, $7, $8, $9 FROM canary
            """,
            connection,
            tx);
        canary.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        canary.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        canary.Parameters.Add(DbParameter.Of(canaryVersion, NpgsqlDbType.Integer));
        canary.Parameters.Add(DbParameter.Of(percent, NpgsqlDbType.Integer));
        canary.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        canary.Parameters.Add(DbParameter.Of(previousVersion, NpgsqlDbType.Integer));
        canary.Parameters.Add(DbParameter.Of(previousCanary is { } p && p != canaryVersion ? p : null, NpgsqlDbType.Integer));
        canary.Parameters.Add(DbParameter.Of(changedBy, NpgsqlDbType.Text));
        canary.Parameters.Add(DbParameter.Of(forced, NpgsqlDbType.Boolean));
        try
        {
            await canary.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            throw new KeyNotFoundException($"Model '{modelName}' has no version {canaryVersion}; alias '{alias}' was not changed.", e);
        }

        await tx.CommitAsync(ct);
    }

    /// <summary>The alias's running canary, or null.</summary>
    public async Task<AliasCanary?> GetCanaryAsync(string modelName, string alias, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT canary_version, canary_percent, started_at FROM scoring.model_alias_canaries WHERE model_name = $1 AND alias = $2");
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new AliasCanary(modelName, alias, reader.GetInt32(0), reader.GetInt32(1), reader.GetFieldValue<DateTimeOffset>(2))
            : null;
    }

    /// <summary>The id of the newest alias move (0 when there is none): where a worker starts following.</summary>
    public async Task<long> LastAliasMoveIdAsync(CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("SELECT coalesce(max(id), 0) FROM scoring.model_alias_history");
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Alias moves after <paramref name="afterId"/>, oldest first.</summary>
    public async Task<IReadOnlyList<RecordedAliasMove>> AliasMovesAfterAsync(long afterId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT id, model_name, alias, version, canary_version FROM scoring.model_alias_history WHERE id > $1 ORDER BY id LIMIT 1000");
        command.Parameters.Add(DbParameter.Of(afterId, NpgsqlDbType.Bigint));
        var moves = new List<RecordedAliasMove>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            moves.Add(new RecordedAliasMove(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.IsDBNull(4) ? null : reader.GetInt32(4)));
        }

        return moves;
    }
}
