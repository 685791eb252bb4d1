using BatchScoring.Contracts;
using BatchScoring.Data;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// Canary moves of an alias: the alias points at a main version and sends a stable share of score request rows to a
/// canary version. Promote or end a canary with a plain move (<see cref="ModelRegistry.SetAliasAsync"/>): the
/// database ends the canary on any move recorded without one.
/// </summary>
public sealed class CanaryAliases(ModelRegistry registry, CanaryStore store, ILogger<CanaryAliases> logger)
{
    /// <summary>
    /// Points the tenant's alias at <paramref name="version"/> with <paramref name="canaryPercent"/> % of rows on
    /// <paramref name="canaryVersion"/>. Throws <see cref="ModelNotFoundException"/> when the model or a version is not
    /// the tenant's, <see cref="ArgumentException"/> for a bad alias, percent or a canary equal to the main version,
    /// <see cref="IncompatibleSignatureException"/> when the canary's signature differs from the main version's (unless forced).
    /// </summary>
    public async Task SetAsync(
        string name, string alias, int version, int canaryVersion, int canaryPercent, string tenant, CancellationToken cancellationToken, bool force = false, string? changedBy = null)
    {
        if (canaryPercent is < 1 or > 99)
        {
            throw new ArgumentOutOfRangeException(nameof(canaryPercent), canaryPercent, $"The canary's share must be between 1 and 99 percent (was {canaryPercent}).");
        }

        if (canaryVersion == version)
        {
            throw new ArgumentException($"The canary version must differ from the version the alias points at (both v{version}); a plain move needs no canary.", nameof(canaryVersion));
        }

        var versions = await registry.ListVersionsAsync(name, tenant, cancellationToken) ?? throw new ModelNotFoundException(ModelRegistry.NotFound(name, null));
        ModelVersionInfo Find(int v) => versions.FirstOrDefault(info => info.Version == v) ?? throw new ModelNotFoundException($"Model '{name}' has no version {v}.");
        var main = Find(version);
        var canary = Find(canaryVersion);
        if (new[] { main, canary }.FirstOrDefault(v => v.ArchivedAt is not null) is { } archived)
        {
            throw new ModelVersionArchivedException(name, archived.Version, "it cannot be an alias target");
        }

        // Both versions answer the same requests: the canary must take and give what the main version does.
        var diff = SignatureCompatibility.Compare(main.Signature, canary.Signature);
        if (!diff.Compatible && !force)
        {
            throw new IncompatibleSignatureException(name, alias, version, canaryVersion, diff);
        }

        try
        {
            await store.SetCanaryAsync(name, alias, version, canaryVersion, canaryPercent, cancellationToken, changedBy, forced: !diff.Compatible);
        }
        catch (KeyNotFoundException ex)
        {
            throw new ModelNotFoundException(ex.Message);
        }

        logger.LogInformation("Alias {Alias} of model {Model} points at v{Version} with {Percent}% of rows on canary v{Canary}", alias, name, version, canaryPercent, canaryVersion);
    }

    /// <summary>The alias's running canary, or null; null also when the tenant has no such model.</summary>
    public async Task<AliasCanary?> GetAsync(string name, string alias, string tenant, CancellationToken cancellationToken) =>
        await registry.OwnsAsync(name, tenant, cancellationToken) ? await store.GetCanaryAsync(name, alias, cancellationToken) : null;
}
