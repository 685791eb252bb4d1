using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>One move of a model alias: to <paramref name="Version"/>, from <paramref name="PreviousVersion"/> (null: created).</summary>
public sealed record AliasChange(string Model, string Alias, int Version, int? PreviousVersion, DateTimeOffset ChangedAt)
{
    /// <summary>Who moved it (null for moves recorded before migration 011).</summary>
    public string? ChangedBy { get; init; }

    /// <summary>The move was forced past an incompatible signature.</summary>
    public bool Forced { get; init; }

    /// <summary>Canary started or changed by this move (migration 012).</summary>
    public int? CanaryVersion { get; init; }

    public int? CanaryPercent { get; init; }

    /// <summary>Canary this move ended.</summary>
    public int? EndedCanaryVersion { get; init; }
}

/// <summary>
/// How an alias is moved: <paramref name="ChangedBy"/> and <paramref name="Forced"/> go to its history; when
/// <paramref name="CheckPrevious"/> is set the move happens only if the alias still points at <paramref name="ExpectedPrevious"/>
/// (null: does not exist yet), the version the caller compared the target with.
/// </summary>
public sealed record AliasMove(string? ChangedBy = null, bool Forced = false, bool CheckPrevious = false, int? ExpectedPrevious = null);

/// <summary>
/// The model registry's tables: model versions (each owned by a tenant), aliases and every move of an alias
/// (<c>scoring.model_versions</c>, <c>model_aliases</c>, <c>model_alias_history</c>).
/// </summary>
public sealed partial class ModelStore(NpgsqlDataSource dataSource)
{
    private readonly DbContextOptions<ScoringDbContext> _options = ScoringDbContext.CreateOptions(dataSource);

    private ScoringDbContext CreateContext() => new(_options);

    /// <summary>Inserts a model version, or updates sha256/storage_path/signature of an existing one.</summary>
    public async Task<ModelVersionEntity> UpsertModelVersionAsync(ModelVersionEntity model, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(model.ModelName);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(model.Version);
        await using var command = dataSource.CreateCommand(
            """
            INSERT INTO scoring.model_versions (model_name, version, sha256, storage_path, signature)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (model_name, version) DO UPDATE
            SET sha256 = EXCLUDED.sha256, storage_path = EXCLUDED.storage_path, signature = EXCLUDED.signature
            RETURNING created_at
            """);
        AddModelParameters(command, model);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        model.CreatedAt = reader.GetFieldValue<DateTimeOffset>(0);
        return model;
    }

    /// <summary>
    /// Registers <paramref name="model"/> as the next version of its model (highest + 1, starting at 1),
    /// serialised per model name; <see cref="ModelVersionEntity.Version"/> is set on return. Throws
    /// <see cref="ModelNameTakenException"/> when the name's versions belong to another tenant.
    /// </summary>
    public async Task<ModelVersionEntity> AddNextModelVersionAsync(ModelVersionEntity model, CancellationToken ct) =>
        (await AddModelVersionAsync(model, reuseIdenticalBytes: false, ct)).Version;

    /// <summary>
    /// Like <see cref="AddNextModelVersionAsync"/>, but when <paramref name="reuseIdenticalBytes"/> and a version of the
    /// name already has the same SHA-256, returns that version (the highest such) with <c>Existing</c> true and adds none.
    /// Numbers are never reused: a new version is numbered past deleted ones too.
    /// </summary>
    public async Task<(ModelVersionEntity Version, bool Existing)> AddModelVersionAsync(ModelVersionEntity model, bool reuseIdenticalBytes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(model.ModelName);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockModelAsync(connection, tx, model.ModelName, ct);

        if (reuseIdenticalBytes)
        {
            await using var same = new NpgsqlCommand(
                """
                SELECT version FROM scoring.model_versions
                WHERE model_name = $1 AND sha256 = $2 AND tenant = $3
                ORDER BY version DESC LIMIT 1
                """,
                connection,
                tx);
            same.Parameters.Add(DbParameter.Of(model.ModelName, NpgsqlDbType.Text));
            same.Parameters.Add(DbParameter.Of(model.Sha256, NpgsqlDbType.Text));
            same.Parameters.Add(DbParameter.Of(model.Tenant, NpgsqlDbType.Text));
            if (await same.ExecuteScalarAsync(ct) is int existing)
            {
                await tx.CommitAsync(ct);
                return ((await GetModelVersionAsync(model.ModelName, existing, ct))!, true);
            }
        }

        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO scoring.model_versions (model_name, version, sha256, storage_path, signature, tenant)
            SELECT $1, GREATEST(COALESCE(max(version), 0), (SELECT COALESCE(max(version), 0) FROM scoring.deleted_model_versions WHERE model_name = $1)) + 1,
                   $3, $4, $5, $6
            FROM scoring.model_versions WHERE model_name = $1
            HAVING bool_and(tenant = $6) IS NOT FALSE
            RETURNING version, created_at
            """,
            connection,
            tx);
        AddModelParameters(insert, model);
        insert.Parameters.Add(DbParameter.Of(model.Tenant, NpgsqlDbType.Text));
        await using (var reader = await insert.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct))
            {
                throw new ModelNameTakenException(model.ModelName);
            }

            model.Version = reader.GetInt32(0);
            model.CreatedAt = reader.GetFieldValue<DateTimeOffset>(1);
        }

        await tx.CommitAsync(ct);
        return (model, false);
    }

    public async Task<ModelVersionEntity?> GetModelVersionAsync(string modelName, int version, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelVersions.AsNoTracking()
            .SingleOrDefaultAsync(m => m.ModelName == modelName && m.Version == version, ct);
    }

    /// <summary>
    /// Resolves a version reference: null, empty or <c>latest</c> → the highest version not archived; an integer →
    /// that version; anything else → the alias of that name. Null when nothing matches.
    /// </summary>
    public async Task<ModelVersionEntity?> ResolveModelAsync(string modelName, string? versionOrAlias, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        var versions = db.ModelVersions.AsNoTracking().Where(m => m.ModelName == modelName);
        if (string.IsNullOrWhiteSpace(versionOrAlias) || string.Equals(versionOrAlias.Trim(), "latest", StringComparison.OrdinalIgnoreCase))
        {
            return await versions.Where(m => m.ArchivedAt == null).OrderByDescending(m => m.Version).FirstOrDefaultAsync(ct);
        }

        var reference = versionOrAlias.Trim();
        if (int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            return await versions.SingleOrDefaultAsync(m => m.Version == version, ct);
        }

        return await versions
            .Where(m => db.ModelAliases.Any(a => a.ModelName == modelName && a.Alias == reference && a.Version == m.Version))
            .SingleOrDefaultAsync(ct);
    }

    /// <summary>Moves of an alias, newest first (<c>scoring.model_alias_history</c>).</summary>
    public async Task<IReadOnlyList<AliasChange>> ListAliasHistoryAsync(string modelName, string alias, int limit, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            """
            SELECT version, previous_version, changed_at, changed_by, forced, canary_version, canary_percent, ended_canary_version FROM scoring.model_alias_history
            WHERE model_name = $1 AND alias = $2 ORDER BY id DESC LIMIT $3
            """);
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(limit, NpgsqlDbType.Integer));
        var changes = new List<AliasChange>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            changes.Add(new AliasChange(modelName, alias, reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetInt32(1), reader.GetFieldValue<DateTimeOffset>(2))
            {
                ChangedBy = reader.IsDBNull(3) ? null : reader.GetString(3),
                Forced = reader.GetBoolean(4),
                CanaryVersion = reader.IsDBNull(5) ? null : reader.GetInt32(5),
                CanaryPercent = reader.IsDBNull(6) ? null : reader.GetInt32(6),
                EndedCanaryVersion = reader.IsDBNull(7) ? null : reader.GetInt32(7),
            });
        }

        return changes;
    }

    public Task<int?> SetAliasAsync(string modelName, string alias, int version, CancellationToken ct) =>
        SetAliasAsync(modelName, alias, version, new AliasMove(), ct);

    /// <summary>
    /// Points <paramref name="alias"/> at <paramref name="version"/> (creating or moving it) and records the move; returns
    /// the version it pointed at before, or null. Serialised with registration, archiving and deletion of the model's
    /// versions. Throws <see cref="KeyNotFoundException"/> when the version does not exist,
    /// <see cref="ModelVersionArchivedException"/> when it is archived, <see cref="AliasMovedException"/> when
    /// <see cref="AliasMove.CheckPrevious"/> is set and the alias points elsewhere now, and <see cref="ArgumentException"/>
    /// for an alias that would be ambiguous (<c>latest</c>, a number) or does not start with a letter.
    /// </summary>
    public async Task<int?> SetAliasAsync(string modelName, string alias, int version, AliasMove move, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ArgumentNullException.ThrowIfNull(move);
        ValidateAlias(alias);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockModelAsync(connection, tx, modelName, ct);
        await using (var target = new NpgsqlCommand(
            """
            SELECT archived_at IS NOT NULL FROM scoring.model_versions WHERE model_name = $1 AND version = $2
            """,
            connection,
            tx))
        {
            target.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
            target.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
            switch (await target.ExecuteScalarAsync(ct))
            {
                case null:
                    throw new KeyNotFoundException($"Model '{modelName}' has no version {version}; alias '{alias}' was not changed.");
                case true:
                    throw new ModelVersionArchivedException(modelName, version, $"alias '{alias}' was not changed");
            }
        }

        await using var command = new NpgsqlCommand(
            """
            WITH previous AS (
                SELECT version FROM scoring.model_aliases WHERE model_name = $1 AND alias = $2 FOR UPDATE
            ), upserted AS (
                INSERT INTO scoring.model_aliases (model_name, alias, version)
                SELECT $1, $2, $3 WHERE NOT $6 OR (SELECT version FROM previous) IS NOT DISTINCT FROM $7
                ON CONFLICT (model_name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()
                RETURNING 1
            ), history AS (
                INSERT INTO scoring.model_alias_history (model_name, alias, version, previous_version, changed_by, forced)
                SELECT $1, $2, $3, (SELECT version FROM previous), $4, $5 FROM upserted
                RETURNING 1
            )
            SELECT (SELECT version FROM previous), (SELECT count(*) FROM upserted), (SELECT count(*) FROM history)
            """,
            connection,
            tx);
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        command.Parameters.Add(DbParameter.Of(move.ChangedBy, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(move.Forced, NpgsqlDbType.Boolean));
        command.Parameters.Add(DbParameter.Of(move.CheckPrevious, NpgsqlDbType.Boolean));
        command.Parameters.Add(DbParameter.Of(move.ExpectedPrevious, NpgsqlDbType.Integer));
        int? previous;
        long moved;
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            previous = reader.IsDBNull(0) ? null : reader.GetInt32(0);
            moved = reader.GetInt64(1);
        }

        if (moved == 0)
        {
            throw new AliasMovedException(
                $"Alias '{alias}' of model '{modelName}' was moved to {(previous is { } p ? $"v{p}" : "nothing")} while this move was checked; nothing was changed, try again.");
        }

        await tx.CommitAsync(ct);
        return previous;
    }

    public async Task<bool> DeleteAliasAsync(string modelName, string alias, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        ArgumentNullException.ThrowIfNull(alias);
        await using var db = CreateContext();
        return await db.ModelAliases.Where(a => a.ModelName == modelName && a.Alias == alias)
            .ExecuteDeleteAsync(ct) > 0;
    }

    public Task<IReadOnlyList<string>> ListModelNamesAsync(CancellationToken ct) => ListModelNamesAsync(null, ct);

    /// <summary>Registered model names of a tenant (null: of every tenant), in order.</summary>
    public async Task<IReadOnlyList<string>> ListModelNamesAsync(string? tenant, CancellationToken ct)
    {
        await using var db = CreateContext();
        var versions = db.ModelVersions.AsNoTracking();
        if (tenant is not null)
        {
            versions = versions.Where(m => m.Tenant == tenant);
        }

        return await versions.Select(m => m.ModelName).Distinct().OrderBy(n => n).ToListAsync(ct);
    }

    public async Task<IReadOnlyList<ModelVersionEntity>> ListModelVersionsAsync(string modelName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelVersions.AsNoTracking().Where(m => m.ModelName == modelName).OrderBy(m => m.Version)
            .ToListAsync(ct);
    }

    public async Task<IReadOnlyList<ModelAliasEntity>> ListAliasesAsync(string modelName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelAliases.AsNoTracking().Where(a => a.ModelName == modelName).OrderBy(a => a.Alias)
            .ToListAsync(ct);
    }

    /// <summary>The rule every alias follows, whichever store moves it (plain moves here, canary moves in <see cref="CanaryStore"/>).</summary>
    public static void ValidateAlias(string alias)
    {
        ArgumentException.ThrowIfNullOrEmpty(alias);
        if (!char.IsAsciiLetter(alias[0]) || alias.Length > 63
            || !alias.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            || string.Equals(alias, "latest", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"Invalid alias '{alias}': an alias starts with a letter, has at most 63 letters, digits, '_', '-' or '.', and is not 'latest'.",
                nameof(alias));
        }
    }

    private static void AddModelParameters(NpgsqlCommand command, ModelVersionEntity model)
    {
        command.Parameters.Add(DbParameter.Of(model.ModelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(model.Version, NpgsqlDbType.Integer));
        command.Parameters.Add(DbParameter.Of(model.Sha256, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(model.StoragePath, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(string.IsNullOrEmpty(model.Signature) ? "{}" : model.Signature, NpgsqlDbType.Jsonb));
    }
}
