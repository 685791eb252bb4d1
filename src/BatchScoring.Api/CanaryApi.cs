using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace BatchScoring.Api;

/// <summary>The canary form of <c>PUT /api/models/{name}/aliases/{alias}</c> (body with canaryVersion and canaryPercent).</summary>
internal static class CanaryApi
{
    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> SetCanaryAsync(
        string name, string alias, ModelsApi.SetAliasRequest body, ClaimsPrincipal user, ModelRegistry registry, CanaryAliases canaries, CancellationToken cancellationToken)
    {
        if (body.CanaryVersion is not { } canaryVersion || body.CanaryPercent is not { } percent)
        {
            return ApiProblems.BadRequest("A canary needs both canaryVersion and canaryPercent (1-99); send neither for a plain move.", "Invalid canary");
        }

        await canaries.SetAsync(name, alias, body.Version, canaryVersion, percent, user.Tenant(), cancellationToken, body.Force, user.Identity?.Name);
        var versions = await registry.ListVersionsAsync(name, user.Tenant(), cancellationToken);
        return versions?.FirstOrDefault(v => v.Version == body.Version) is { } info ? TypedResults.Ok(info) : ModelsApi.ModelNotFound(name);
    }
}
