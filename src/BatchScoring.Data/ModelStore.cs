using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>One move of a model alias: to <paramref name="Version"/>, from <paramref name="PreviousVersion"/> (null: created).</summary>
public sealed record AliasChange(string Model, string Alias, int Version, int? PreviousVersion, DateTimeOffset ChangedAt)
{
    /// <summary>Canary started or changed by this move (migration 012).</summary>
    public int? CanaryVersion { get; init; }

    public int? CanaryPercent { get; init; }

    /// <summary>Canary this move ended.</summary>
    public int? EndedCanaryVersion { get; init; }
}

/// <summary>
/// The model registry's tables: model versions (each owned by a tenant), aliases and every move of an alias
/// (<c>scoring.model_versions</c>, <c>model_aliases</c>, <c>model_alias_history</c>).
/// </summary>
public sealed class ModelStore(NpgsqlDataSource dataSource)
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
    public async Task<ModelVersionEntity> AddNextModelVersionAsync(ModelVersionEntity model, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(model.ModelName);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var lockCommand = new NpgsqlCommand(
            """
            SELECT pg_advisory_xact_lock(hashtext('batchscoring.model_version'), hashtext($1))
            """,
            connection,
            tx))
        {
            lockCommand.Parameters.Add(DbParameter.Of(model.ModelName, NpgsqlDbType.Text));
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO scoring.model_versions (model_name, version, sha256, storage_path, signature, tenant)
            SELECT $1, COALESCE(max(version), 0) + 1, $3, $4, $5, $6
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
        return model;
    }

    public async Task<ModelVersionEntity?> GetModelVersionAsync(string modelName, int version, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelVersions.AsNoTracking()
            .SingleOrDefaultAsync(m => m.ModelName == modelName && m.Version == version, ct);
    }

    /// <summary>
    /// Resolves a version reference: null, empty or <c>latest</c> → the highest version; an integer →
    /// that version; anything else → the alias of that name. Null when nothing matches.
    /// </summary>
    public async Task<ModelVersionEntity?> ResolveModelAsync(string modelName, string? versionOrAlias, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        var versions = db.ModelVersions.AsNoTracking().Where(m => m.ModelName == modelName);
        if (string.IsNullOrWhiteSpace(versionOrAlias) || string.Equals(versionOrAlias.Trim(), "latest", StringComparison.OrdinalIgnoreCase))
        {
            return await versions.OrderByDescending(m => m.Version).FirstOrDefaultAsync(ct);
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
            SELECT version, previous_version, changed_at, canary_version, canary_percent, ended_canary_version FROM scoring.model_alias_history
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
                CanaryVersion = reader.IsDBNull(3) ? null : reader.GetInt32(3),
                CanaryPercent = reader.IsDBNull(4) ? null : reader.GetInt32(4),
                EndedCanaryVersion = reader.IsDBNull(5) ? null : reader.GetInt32(5),
            });
        }

        return changes;
    }

    /// <summary>
    /// Points <paramref name="alias"/> at <paramref name="version"/> (creating or moving it); returns the
    /// version it pointed at before, or null. Throws <see cref="KeyNotFoundException"/> when the version
    /// does not exist and <see cref="ArgumentException"/> for an alias that would be ambiguous
    /// (<c>latest</c>, a number) or does not start with a letter.
    /// </summary>
    public async Task<int?> SetAliasAsync(string modelName, string alias, int version, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ValidateAlias(alias);
        await using var command = dataSource.CreateCommand(
            """
            WITH previous AS (
                SELECT version FROM scoring.model_aliases WHERE model_name = $1 AND alias = $2 FOR UPDATE
            ), upserted AS (
                INSERT INTO scoring.model_aliases (model_name, alias, version) VALUES ($1, $2, $3)
                ON CONFLICT (model_name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()
                RETURNING 1
            ), history AS (
                INSERT INTO scoring.model_alias_history (model_name, alias, version, previous_version)
                SELECT $1, $2, $3, (SELECT version FROM previous) FROM upserted
                RETURNING 1
            )
            SELECT (SELECT version FROM previous), (SELECT count(*) FROM upserted), (SELECT count(*) FROM history)
            """);
        command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(alias, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of(version, NpgsqlDbType.Integer));
        try
        {
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return reader.IsDBNull(0) ? null : reader.GetInt32(0);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            throw new KeyNotFoundException($"Model '{modelName}' has no version {version}; alias '{alias}' was not changed.", e);
        }
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

    private static void ValidateAlias(string alias)
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
