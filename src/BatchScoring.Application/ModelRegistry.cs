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
/// The rules of docs/model-registry.md: alias moves checked against the signature, archive and delete, identical bytes.
/// </summary>
public sealed partial class ModelRegistry(
    ModelStore store, IOptions<BatchScoringOptions> options, IEnumerable<IModelVersionUse> uses, ILogger<ModelRegistry> logger)
{
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>Why <see cref="ResolveAsync"/> found nothing, in the words every caller reports.</summary>
    public static string NotFound(string name, string? versionOrAlias) => versionOrAlias is null
        ? $"Model '{name}' is not registered."
        : $"Model '{name}' has no version or alias '{versionOrAlias}'.";

    /// <summary>Why an archived version is refused, in the words every caller reports (<paramref name="consequence"/>: what was refused).</summary>
    public static string Archived(ModelVersionEntity version, string consequence)
    {
        ArgumentNullException.ThrowIfNull(version);
        return new ModelVersionArchivedException(version.ModelName, version.Version, consequence).Message;
    }

    public Task<ModelRegistration> RegisterAsync(string name, Stream content, CancellationToken cancellationToken) =>
        RegisterAsync(name, content, Tenants.Default, cancellationToken);

    /// <summary>
    /// Stores the file and registers it as the next version of <paramref name="name"/>, a name owned by <paramref name="tenant"/>;
    /// bytes already registered under the name give that version back (<see cref="ModelRegistration.Existing"/>) instead.
    /// </summary>
    public async Task<ModelRegistration> RegisterAsync(string name, Stream content, string tenant, CancellationToken cancellationToken)
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
            ModelVersionEntity version;
            bool existing;

            // Under the file's lock: a deletion of the last version with these bytes cannot remove the file in between.
            await using (await store.LockFileAsync(sha256, cancellationToken))
            {
                if (File.Exists(finalPath))
                {
                    File.Delete(tempPath);
                }
                else
                {
                    File.Move(tempPath, finalPath);
                }

                (version, existing) = await store.AddModelVersionAsync(
                    new ModelVersionEntity { ModelName = name, Tenant = tenant, Sha256 = sha256, StoragePath = finalPath, Signature = JsonSerializer.Serialize(signature) },
                    reuseIdenticalBytes: true,
                    cancellationToken);
            }

            var info = (await ToInfoAsync([version], cancellationToken))[0];
            if (existing)
            {
                logger.LogInformation("Model {Model} v{Version} has the same bytes ({Sha256}); no new version", name, version.Version, sha256);
                var archived = info.ArchivedAt is null ? "" : $" (archived: unarchive it with `batchscore models unarchive --name {name} --version {version.Version}` to use it)";
                return Registration(info, true, $"The same file is already registered as {name}@{version.Version}{archived}; no new version was added.");
            }

            logger.LogInformation("Registered model {Model} v{Version} ({Sha256})", name, version.Version, sha256);
            return Registration(info, false, $"Registered as {name}@{version.Version}.");
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
    /// Points <paramref name="alias"/> of the tenant's model at <paramref name="version"/> and returns that version. A move
    /// to a version whose signature is incompatible with the current target's (<see cref="SignatureCompatibility"/>) is
    /// refused with <see cref="IncompatibleSignatureException"/> unless <paramref name="force"/>; a forced one is marked
    /// so in the history. Throws <see cref="ModelNotFoundException"/> when the model or the version is not there,
    /// <see cref="ModelVersionArchivedException"/> for an archived version and <see cref="ArgumentException"/> for an
    /// invalid alias name.
    /// </summary>
    public async Task<ModelVersionInfo> SetAliasAsync(
        string name, string alias, int version, string tenant, CancellationToken cancellationToken, bool force = false, string? changedBy = null)
    {
        var versions = await OwnVersionsAsync(name, tenant, cancellationToken) ?? throw new ModelNotFoundException(NotFound(name, null));
        var target = versions.FirstOrDefault(v => v.Version == version) ?? throw new ModelNotFoundException($"Model '{name}' has no version {version}.");
        var current = (await store.ListAliasesAsync(name, cancellationToken)).FirstOrDefault(a => a.Alias == alias)?.Version;
        var forced = false;
        if (current is { } from && from != version && versions.FirstOrDefault(v => v.Version == from) is { } fromVersion)
        {
            var diff = SignatureCompatibility.Compare(SignatureCompatibility.FromStored(fromVersion.Signature), SignatureCompatibility.FromStored(target.Signature));
            if (!diff.Compatible && !force)
            {
                throw new IncompatibleSignatureException(name, alias, from, version, diff);
            }

            forced = !diff.Compatible;
        }

        try
        {
            await store.SetAliasAsync(name, alias, version, new AliasMove(changedBy, forced, CheckPrevious: true, ExpectedPrevious: current), cancellationToken);
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.Message); // deleted in the meantime
        }

        if (forced)
        {
            logger.LogWarning("Alias {Alias} of model {Model} moved v{From} → v{Version} past an incompatible signature (forced by {Who})", alias, name, current, version, changedBy);
        }
        else
        {
            logger.LogInformation("Alias {Alias} of model {Model} points at v{Version}", alias, name, version);
        }

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
            ChangedBy = c.ChangedBy,
            Forced = c.Forced,
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
    public async Task<ModelVersionInfo> RollbackAliasAsync(
        string name, string alias, string tenant, CancellationToken cancellationToken, bool force = false, string? changedBy = null)
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

        return await SetAliasAsync(name, alias, previous, tenant, cancellationToken, force, changedBy);
    }

    /// <summary>The contract shape of a version, with no aliases.</summary>
    public static ModelVersionInfo ToInfo(ModelVersionEntity version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return new ModelVersionInfo(version.ModelName, version.Version, version.Sha256, [], version.CreatedAt, SignatureCompatibility.FromStored(version.Signature))
        {
            ArchivedAt = version.ArchivedAt,
        };
    }

    private static ModelRegistration Registration(ModelVersionInfo info, bool existing, string message) =>
        new(info.Name, info.Version, info.Sha256, info.Aliases, info.CreatedAt, info.Signature, existing, message) { ArchivedAt = info.ArchivedAt };

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

/// <summary>The alias would move to a version whose signature breaks its callers; <see cref="Diff"/> says how.</summary>
public sealed class IncompatibleSignatureException(string name, string alias, int from, int to, SignatureDiff diff)
    : InvalidOperationException(
        $"Alias '{alias}' of model '{name}' points at v{from}, whose signature v{to} does not keep: {diff.Summary}. Nothing was changed; force the move (--force, or \"force\": true) if the callers are ready.")
{
    public int From { get; } = from;

    public int To { get; } = to;

    public SignatureDiff Diff { get; } = diff;
}

public sealed class ModelRegistrationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The model, version or alias is not the caller's tenant's (or does not exist); the message says which.</summary>
public sealed class ModelNotFoundException(string message) : Exception(message);

/// <summary>An alias that never moved has no earlier version to go back to.</summary>
public sealed class AliasRollbackRefusedException(string message) : InvalidOperationException(message);
