using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application;

/// <summary>
/// Named models with integer versions, owned by a tenant, and their aliases. Files are stored content-addressed
/// (<c>{store}/{sha256}.onnx</c>), so registering the same bytes twice stores them once; the signature is read from
/// the file at registration. Every read takes the caller's tenant: another tenant's model looks absent.
/// </summary>
public sealed partial class ModelRegistry(ModelStore store, IOptions<BatchScoringOptions> options, ILogger<ModelRegistry> logger)
{
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>Why <see cref="ResolveAsync"/> found nothing, in the words every caller reports.</summary>
    public static string NotFound(string name, string? versionOrAlias) => versionOrAlias is null
        ? $"Model '{name}' is not registered."
        : $"Model '{name}' has no version or alias '{versionOrAlias}'.";

    public Task<ModelVersionEntity> RegisterAsync(string name, Stream content, CancellationToken cancellationToken) =>
        RegisterAsync(name, content, Tenants.Default, cancellationToken);

    /// <summary>Stores the file and registers it as the next version of <paramref name="name"/>, a name owned by <paramref name="tenant"/>.</summary>
    public async Task<ModelVersionEntity> RegisterAsync(string name, Stream content, string tenant, CancellationToken cancellationToken)
    {
        if (!IsValidName(name))
        {
            throw new ModelRegistrationException($"Model name '{name}' is invalid: use 1-63 lower-case letters, digits, '_' or '-', starting with a letter.");
        }

        string storeDir;
        try
        {
            storeDir = options.Value.GetStorageRoots().Confine(options.Value.ModelStorePath, $"{BatchScoringOptions.SectionName}:{nameof(BatchScoringOptions.ModelStorePath)}");
        }
        catch (PathNotAllowedException ex)
        {
            throw new ModelRegistrationException($"Models cannot be stored: {ex.Message}", ex);
        }

        Directory.CreateDirectory(storeDir);
        var tempPath = Path.Combine(storeDir, $".upload-{Guid.NewGuid():N}.tmp");
        try
        {
            string sha256;
            await using (var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            if (new FileInfo(tempPath).Length == 0)
            {
                throw new ModelRegistrationException($"The file uploaded for model '{name}' is empty.");
            }

            ModelSignature signature;
            try
            {
                using var model = ScoringModel.Load(tempPath, new ScoringSessionOptions { PreferCuda = false, IntraOpThreads = 1 }, null, sha256);
                signature = model.Signature;
            }
            catch (ModelLoadException ex)
            {
                // The temporary path is the model store's: not for the client.
                var reason = ex.Message.Replace($"Model file '{tempPath}'", "The file", StringComparison.Ordinal).Replace(tempPath, "the file", StringComparison.Ordinal);
                throw new ModelRegistrationException($"The file uploaded for model '{name}' is not a loadable ONNX model: {reason}", ex);
            }

            var finalPath = Path.Combine(storeDir, $"{sha256}.onnx");
            if (File.Exists(finalPath))
            {
                File.Delete(tempPath);
            }
            else
            {
                File.Move(tempPath, finalPath);
            }

            var version = await store.AddNextModelVersionAsync(
                new ModelVersionEntity { ModelName = name, Tenant = tenant, Sha256 = sha256, StoragePath = finalPath, Signature = JsonSerializer.Serialize(signature) },
                cancellationToken);
            logger.LogInformation("Registered model {Model} v{Version} ({Sha256})", name, version.Version, sha256);
            return version;
        }
        finally
        {
            if (File.Exists(tempPath))
            {
                File.Delete(tempPath);
            }
        }
    }

    /// <summary>
    /// The tenant's version of <paramref name="name"/> that <paramref name="versionOrAlias"/> names (a number, an alias;
    /// null, empty or <c>latest</c>: the highest); null when there is none or the model is another tenant's.
    /// </summary>
    public async Task<ModelVersionEntity?> ResolveAsync(string name, string? versionOrAlias, string tenant, CancellationToken cancellationToken) =>
        await store.ResolveModelAsync(name, versionOrAlias, cancellationToken) is { } version && version.Tenant == tenant ? version : null;

    /// <summary>Whether the tenant owns the model (has registered it; another tenant's model is not owned).</summary>
    public async Task<bool> OwnsAsync(string name, string tenant, CancellationToken cancellationToken) =>
        await OwnVersionsAsync(name, tenant, cancellationToken) is not null;

    /// <summary>Every version of every model of the tenant, by name and version.</summary>
    public async Task<IReadOnlyList<ModelVersionInfo>> ListAsync(string tenant, CancellationToken cancellationToken)
    {
        var all = new List<ModelVersionInfo>();
        foreach (var name in await store.ListModelNamesAsync(tenant, cancellationToken))
        {
            all.AddRange(await ToInfoAsync(await store.ListModelVersionsAsync(name, cancellationToken), cancellationToken));
        }

        return all;
    }

    /// <summary>The versions of the tenant's model, with their aliases; null when the tenant has no such model.</summary>
    public async Task<IReadOnlyList<ModelVersionInfo>?> ListVersionsAsync(string name, string tenant, CancellationToken cancellationToken) =>
        await OwnVersionsAsync(name, tenant, cancellationToken) is { } versions ? await ToInfoAsync(versions, cancellationToken) : null;

    /// <summary>
    /// Points <paramref name="alias"/> of the tenant's model at <paramref name="version"/> and returns that version. Throws
    /// <see cref="ModelNotFoundException"/> when the model or the version is not there and <see cref="ArgumentException"/>
    /// for an invalid alias name.
    /// </summary>
    public async Task<ModelVersionInfo> SetAliasAsync(string name, string alias, int version, string tenant, CancellationToken cancellationToken)
    {
        var versions = await OwnVersionsAsync(name, tenant, cancellationToken) ?? throw new ModelNotFoundException(NotFound(name, null));
        var target = versions.FirstOrDefault(v => v.Version == version) ?? throw new ModelNotFoundException($"Model '{name}' has no version {version}.");
        await store.SetAliasAsync(name, alias, version, cancellationToken);
        logger.LogInformation("Alias {Alias} of model {Model} points at v{Version}", alias, name, version);
        return (await ToInfoAsync([target], cancellationToken))[0];
    }

    /// <summary>Moves of an alias of the tenant's model, newest first; null when the tenant has no such model.</summary>
    public async Task<IReadOnlyList<ModelAliasChange>?> AliasHistoryAsync(string name, string alias, int limit, string tenant, CancellationToken cancellationToken)
    {
        if (!await OwnsAsync(name, tenant, cancellationToken))
        {
            return null;
        }

        var changes = await store.ListAliasHistoryAsync(name, alias, limit, cancellationToken);
        return changes.Select(c => new ModelAliasChange(c.Model, c.Alias, c.Version, c.PreviousVersion, c.ChangedAt)
        {
            CanaryVersion = c.CanaryVersion,
            CanaryPercent = c.CanaryPercent,
            EndedCanaryVersion = c.EndedCanaryVersion,
        }).ToArray();
    }

    /// <summary>
    /// Undoes the alias's last move: points it back at the version it had before, and returns that version. Throws
    /// <see cref="ModelNotFoundException"/> when the model or the alias is not there and <see cref="AliasRollbackRefusedException"/>
    /// when the alias has had one version since it was created.
    /// </summary>
    public async Task<ModelVersionInfo> RollbackAliasAsync(string name, string alias, string tenant, CancellationToken cancellationToken)
    {
        var last = await AliasHistoryAsync(name, alias, 1, tenant, cancellationToken) ?? throw new ModelNotFoundException(NotFound(name, null));
        if (last.Count == 0)
        {
            throw new ModelNotFoundException($"Model '{name}' has no alias '{alias}'.");
        }

        if (last[0].PreviousVersion is not { } previous)
        {
            throw new AliasRollbackRefusedException(
                $"Alias '{alias}' of model '{name}' has pointed at v{last[0].Version} since it was created; there is no earlier version to go back to.");
        }

        return await SetAliasAsync(name, alias, previous, tenant, cancellationToken);
    }

    /// <summary>The contract shape of a version, with no aliases (a version just registered has none).</summary>
    public static ModelVersionInfo ToInfo(ModelVersionEntity version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return new ModelVersionInfo(version.ModelName, version.Version, version.Sha256, [], version.CreatedAt, version.Signature);
    }

    private async Task<IReadOnlyList<ModelVersionEntity>?> OwnVersionsAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var versions = await store.ListModelVersionsAsync(name, cancellationToken);
        return versions.Count > 0 && versions.All(v => v.Tenant == tenant) ? versions : null;
    }

    private async Task<IReadOnlyList<ModelVersionInfo>> ToInfoAsync(IReadOnlyList<ModelVersionEntity> versions, CancellationToken cancellationToken)
    {
        var aliases = new List<ModelAliasEntity>();
        foreach (var name in versions.Select(v => v.ModelName).Distinct())
        {
            aliases.AddRange(await store.ListAliasesAsync(name, cancellationToken));
        }

        return versions.Select(v => ToInfo(v) with
        {
            Aliases = aliases.Where(a => a.ModelName == v.ModelName && a.Version == v.Version).Select(a => a.Alias).ToArray(),
        }).ToArray();
    }

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,62}$")]
    private static partial Regex NamePattern();
}

public sealed class ModelRegistrationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The model, version or alias is not the caller's tenant's (or does not exist); the message says which.</summary>
public sealed class ModelNotFoundException(string message) : Exception(message);

/// <summary>An alias that never moved has no earlier version to go back to.</summary>
public sealed class AliasRollbackRefusedException(string message) : InvalidOperationException(message);
