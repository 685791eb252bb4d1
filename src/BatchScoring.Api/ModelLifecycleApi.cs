using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

/// <summary>Archive, unarchive and delete model versions (docs/model-registry.md). Refusals (in use, archived) are 409 problems.</summary>
public static class ModelLifecycleApi
{
    public static RouteGroupBuilder MapModelLifecycleApi(this RouteGroupBuilder models)
    {
        ArgumentNullException.ThrowIfNull(models);
        models.MapPost("/{name}/versions/{version:int}/archive", ArchiveVersion).WithName(nameof(ArchiveVersion))
            .WithSummary("Archive a version: kept for lineage, refused at submit and as an alias target; 409 while an alias points at it.")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        models.MapPost("/{name}/versions/{version:int}/unarchive", UnarchiveVersion).WithName(nameof(UnarchiveVersion))
            .WithSummary("Make an archived version usable again.")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status404NotFound);
        models.MapDelete("/{name}/versions/{version:int}", DeleteVersion).WithName(nameof(DeleteVersion))
            .WithSummary("Delete a version (and its file when no other version has the same bytes); 409 while an alias, a queued or running job or a schedule uses it.")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return models;
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> ArchiveVersion(
        string name, int version, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await registry.ArchiveAsync(name, version, user.Tenant(), user.Identity?.Name, cancellationToken));
        }
        catch (ModelNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> UnarchiveVersion(
        string name, int version, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await registry.UnarchiveAsync(name, version, user.Tenant(), cancellationToken));
        }
        catch (ModelNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
    }

    public static async Task<Results<Ok<ModelVersionDeleted>, ProblemHttpResult>> DeleteVersion(
        string name, int version, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await registry.DeleteVersionAsync(name, version, user.Tenant(), user.Identity?.Name, cancellationToken));
        }
        catch (ModelNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
    }

    /// <summary>The 409 of a refused alias move: the summary in <c>detail</c>, the structured diff in <c>diff</c>.</summary>
    internal static ProblemHttpResult Incompatible(IncompatibleSignatureException ex) =>
        TypedResults.Problem(
            ex.Message,
            statusCode: StatusCodes.Status409Conflict,
            title: "Incompatible signature",
            extensions: new Dictionary<string, object?> { ["fromVersion"] = ex.From, ["toVersion"] = ex.To, ["diff"] = ex.Diff });
}
