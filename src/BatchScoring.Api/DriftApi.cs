using BatchScoring.Application.Drift;
using BatchScoring.Data;
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
        var api = app.MapGroup("/api/models/{name}").WithTags("Drift");
        api.MapPost("/profile", BuildProfile).WithName(nameof(BuildProfile))
            .WithSummary("Build the reference profile of a model version from a dataset the service can read (Parquet/CSV path).");
        api.MapGet("/profile", GetProfile).WithName(nameof(GetProfile)).WithSummary("The reference profile of a model version (?version=, default latest).");
        api.MapPost("/drift/audit", Audit).WithName(nameof(Audit)).WithSummary("Audit drift now: compare recent samples with the reference profile.");
        api.MapGet("/drift", ListReports).WithName(nameof(ListReports)).WithSummary("Drift reports, newest first (?version=&limit=).");
        return api;
    }

    /// <param name="Version">Version number or alias (default: latest).</param>
    /// <param name="WindowHours">Hours of recent samples to compare (default: BatchScoring:Drift:WindowHours).</param>
    public sealed record AuditRequest(string? Version, int? WindowHours);

    public static async Task<Results<Created<ModelProfile>, ProblemHttpResult>> BuildProfile(
        string name, ProfileRequest body, ReferenceProfiler profiler, CancellationToken cancellationToken)
    {
        try
        {
            var profile = await profiler.BuildAsync(name, body, cancellationToken);
            return TypedResults.Created($"/api/models/{name}/profile?version={profile.Version}", profile);
        }
        catch (DriftProfileException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "Cannot build the profile");
        }
    }

    public static async Task<Results<Ok<ModelProfile>, NotFound<string>>> GetProfile(
        string name, string? version, JobStore store, ReferenceProfiler profiler, CancellationToken cancellationToken)
    {
        var resolved = await store.ResolveModelAsync(name, version, cancellationToken);
        if (resolved is null)
        {
            return TypedResults.NotFound($"Model '{name}' has no version or alias '{version ?? "(latest)"}'.");
        }

        return await profiler.GetAsync(resolved.ModelName, resolved.Version, cancellationToken) is { } profile
            ? TypedResults.Ok(profile)
            : TypedResults.NotFound($"Model '{name}' v{resolved.Version} has no reference profile.");
    }

    public static async Task<Results<Ok<DriftReport>, ProblemHttpResult>> Audit(
        string name, AuditRequest? body, DriftAuditor auditor, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await auditor.AuditAsync(name, body?.Version, DriftAuditor.ManualTrigger, cancellationToken, body?.WindowHours));
        }
        catch (DriftProfileException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "Cannot audit drift");
        }
    }

    public static async Task<Ok<IReadOnlyList<DriftReport>>> ListReports(
        string name, int? version, int? limit, DriftAuditor auditor, CancellationToken cancellationToken) =>
        TypedResults.Ok(await auditor.ListAsync(name, version, Math.Clamp(limit ?? 20, 1, 500), cancellationToken));
}
