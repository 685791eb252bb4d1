using BatchScoring.Contracts;
using BatchScoring.Data;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// Something besides aliases and queued or running jobs that holds on to a model version, such as a recurring schedule
/// that names <c>churn@3</c>. Register implementations in the service collection; <see cref="ModelRegistry.DeleteVersionAsync"/>
/// asks each one before deleting and refuses while any names a use.
/// </summary>
public interface IModelVersionUse
{
    /// <summary>What uses the version, each in a few words (<c>schedule 'nightly-churn'</c>); empty when nothing does.</summary>
    Task<IReadOnlyList<string>> FindAsync(string modelName, int version, CancellationToken cancellationToken);
}

public sealed partial class ModelRegistry
{
    /// <summary>
    /// Archives a version of the tenant's model (idempotent). Throws <see cref="ModelNotFoundException"/> and
    /// <see cref="ModelVersionInUseException"/> while an alias points at it.
    /// </summary>
    public async Task<ModelVersionInfo> ArchiveAsync(string name, int version, string tenant, string? archivedBy, CancellationToken cancellationToken)
    {
        await RequireVersionAsync(name, version, tenant, cancellationToken);
        try
        {
            var archived = await store.ArchiveAsync(name, version, archivedBy, cancellationToken);
            logger.LogInformation("Archived model {Model} v{Version} ({Who})", name, version, archivedBy);
            return (await ToInfoAsync([archived], cancellationToken))[0];
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.Message);
        }
    }

    /// <summary>Makes an archived version of the tenant's model usable again (idempotent).</summary>
    public async Task<ModelVersionInfo> UnarchiveAsync(string name, int version, string tenant, CancellationToken cancellationToken)
    {
        await RequireVersionAsync(name, version, tenant, cancellationToken);
        try
        {
            var restored = await store.UnarchiveAsync(name, version, cancellationToken);
            logger.LogInformation("Unarchived model {Model} v{Version}", name, version);
            return (await ToInfoAsync([restored], cancellationToken))[0];
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.Message);
        }
    }

    /// <summary>
    /// Deletes a version of the tenant's model, then its stored file when no version (of any model) has the same bytes.
    /// Refused with <see cref="ModelVersionInUseException"/> while an alias, a queued or running job, or an
    /// <see cref="IModelVersionUse"/> (schedules) uses it. Finished jobs keep naming it (and its SHA-256) for lineage.
    /// </summary>
    public async Task<ModelVersionDeleted> DeleteVersionAsync(string name, int version, string tenant, string? deletedBy, CancellationToken cancellationToken)
    {
        await RequireVersionAsync(name, version, tenant, cancellationToken);
        var hooked = new List<string>();
        foreach (var use in uses)
        {
            hooked.AddRange(await use.FindAsync(name, version, cancellationToken));
        }

        if (hooked.Count > 0)
        {
            throw new ModelVersionInUseException(ModelStore.InUse(name, version, hooked));
        }

        ModelVersionEntity deleted;
        try
        {
            deleted = await store.DeleteVersionAsync(name, version, deletedBy, cancellationToken);
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.Message);
        }

        var fileRemoved = false;
        await using (await store.LockFileAsync(deleted.Sha256, cancellationToken))
        {
            if (await store.CountFileReferencesAsync(deleted.StoragePath, deleted.Sha256, cancellationToken) == 0 && File.Exists(deleted.StoragePath))
            {
                File.Delete(deleted.StoragePath);
                fileRemoved = true;
            }
        }

        logger.LogInformation("Deleted model {Model} v{Version} ({Who}); file {Outcome}", name, version, deletedBy, fileRemoved ? "removed" : "kept (other versions use it)");
        return new ModelVersionDeleted(name, version, deleted.Sha256, fileRemoved);
    }

    private async Task RequireVersionAsync(string name, int version, string tenant, CancellationToken cancellationToken)
    {
        var versions = await OwnVersionsAsync(name, tenant, cancellationToken) ?? throw new ModelNotFoundException(NotFound(name, null));
        if (versions.All(v => v.Version != version))
        {
            throw new ModelNotFoundException($"Model '{name}' has no version {version}.");
        }
    }
}
