using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

/// <summary>Reference profiles and drift audits of a model: <c>/api/models/{name}/profile</c>, <c>/api/models/{name}/drift</c>.</summary>
public static class DriftApi
{
    public static RouteGroupBuilder MapDriftApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/models/{name}").WithTags("Drift")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/profile", BuildProfile).WithName(nameof(BuildProfile))
            .WithSummary("Build the reference profile of a model version from a dataset the service can read (Parquet/CSV path).")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapGet("/profile", GetProfile).WithName(nameof(GetProfile)).WithSummary("The reference profile of a model version (?version=, default latest).")
            .RequireAuthorization(ApiScopes.Read);
        api.MapPost("/drift/audit", Audit).WithName(nameof(Audit)).WithSummary("Audit drift now: compare recent samples with the reference profile.")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapGet("/drift", ListReports).WithName(nameof(ListReports)).WithSummary("Drift reports, newest first (?version=&limit=).")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status400BadRequest);
        return api;
    }

    /// <param name="Version">Version number or alias (default: latest).</param>
    /// <param name="WindowHours">Hours of recent samples to compare (default: BatchScoring:Drift:WindowHours).</param>
    public sealed record AuditRequest([property: System.Text.Json.Serialization.JsonConverter(typeof(BatchScoring.Contracts.StringOrNumberConverter))] string? Version, int? WindowHours);

    // Profile and audit failures (no samples, no profile, unreadable data) are thrown and become 400 problems in ApiExceptionHandler.
    public static async Task<Results<Created<ModelProfile>, ProblemHttpResult>> BuildProfile(
        string name, ProfileRequest body, ClaimsPrincipal user, ModelRegistry registry, ReferenceProfiler profiler, CancellationToken cancellationToken)
    {
        if (await OwnVersionAsync(name, body.Version, user, registry, cancellationToken) is { } missing)
        {
            return missing;
        }

        var profile = await profiler.BuildAsync(name, body, cancellationToken);
        return TypedResults.Created($"/api/models/{name}/profile?version={profile.Version}", profile);
    }

    public static async Task<Results<Ok<ModelProfile>, ProblemHttpResult>> GetProfile(
        string name, string? version, ClaimsPrincipal user, ModelRegistry registry, ReferenceProfiler profiler, CancellationToken cancellationToken)
    {
        var resolved = await registry.ResolveAsync(name, version, user.Tenant(), cancellationToken);
        if (resolved is null)
        {
            return ApiProblems.NotFound(ModelRegistry.NotFound(name, version));
        }

        return await profiler.GetAsync(resolved.ModelName, resolved.Version, cancellationToken) is { } profile
            ? TypedResults.Ok(profile)
            : ApiProblems.NotFound($"Model '{name}' v{resolved.Version} has no reference profile.");
    }

    public static async Task<Results<Ok<DriftReport>, ProblemHttpResult>> Audit(
        string name, AuditRequest? body, ClaimsPrincipal user, ModelRegistry registry, DriftAuditor auditor, CancellationToken cancellationToken)
    {
        if (await OwnVersionAsync(name, body?.Version, user, registry, cancellationToken) is { } missing)
        {
            return missing;
        }

        return TypedResults.Ok(await auditor.AuditAsync(name, body?.Version, DriftAuditor.ManualTrigger, cancellationToken, body?.WindowHours));
    }

    public static async Task<Results<Ok<IReadOnlyList<DriftReport>>, ProblemHttpResult>> ListReports(
        string name, int? version, int? limit, ClaimsPrincipal user, ModelRegistry registry, DriftAuditor auditor, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 500)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and 500 (was {limit}).");
        }

        if (!await registry.OwnsAsync(name, user.Tenant(), cancellationToken))
        {
            return ModelsApi.ModelNotFound(name);
        }

        return TypedResults.Ok(await auditor.ListAsync(name, version, limit ?? 20, cancellationToken));
    }

    /// <summary>A 404 problem when the model (or the given version or alias) is not the caller's; null when it is.</summary>
    private static async Task<ProblemHttpResult?> OwnVersionAsync(string name, string? version, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken) =>
        await registry.ResolveAsync(name, version, user.Tenant(), cancellationToken) is null ? ApiProblems.NotFound(ModelRegistry.NotFound(name, version)) : null;
}
