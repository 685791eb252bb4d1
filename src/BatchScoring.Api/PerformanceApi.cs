using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Application.Performance;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

/// <summary>Delayed labels and realised performance of a model: <c>/api/models/{name}/labels</c>, <c>/api/models/{name}/performance</c>.</summary>
public static class PerformanceApi
{
    public static RouteGroupBuilder MapPerformanceApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/models/{name}").WithTags("Performance")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapPost("/labels", IngestLabels).WithName(nameof(IngestLabels))
            .WithSummary("Ingest delayed labels (Parquet/CSV path as the service sees it, or a query on a named source); a known key's label is replaced.")
            .RequireAuthorization(ApiScopes.Submit);
        api.MapGet("/performance", Report).WithName(nameof(Report))
            .WithSummary("Compute and store realised performance per version over rows scored in a window (?window=7d&version=).")
            .RequireAuthorization(ApiScopes.Read);
        api.MapGet("/performance/reports", ListReports).WithName("ListPerformanceReports")
            .WithSummary("Stored performance reports, newest first (?version=&limit=).")
            .RequireAuthorization(ApiScopes.Read);
        return api;
    }

    public static async Task<Results<Ok<LabelIngestResult>, ProblemHttpResult>> IngestLabels(
        string name, LabelIngestRequest body, ClaimsPrincipal user, ModelRegistry registry, LabelIngester ingester, CancellationToken cancellationToken)
    {
        if (!await registry.OwnsAsync(name, user.Tenant(), cancellationToken))
        {
            return ModelsApi.ModelNotFound(name);
        }

        try
        {
            return TypedResults.Ok(await ingester.IngestAsync(name, body, cancellationToken));
        }
        catch (LabelIngestException ex)
        {
            return ApiProblems.BadRequest(ex.Message, "Invalid labels");
        }
    }

    public static async Task<Results<Ok<IReadOnlyList<PerformanceReport>>, ProblemHttpResult>> Report(
        string name, string? version, string? window, ClaimsPrincipal user, ModelRegistry registry, PerformanceReporter reporter, CancellationToken cancellationToken)
    {
        var span = PerformanceOptions.ParseWindow(window);
        if (window is not null && span is null)
        {
            return ApiProblems.BadRequest($"Query parameter 'window' must be a number of days or hours such as 7d or 36h, at most 366 days (was '{window}').");
        }

        if (!await registry.OwnsAsync(name, user.Tenant(), cancellationToken))
        {
            return ModelsApi.ModelNotFound(name);
        }

        int? only = null;
        if (version is not null)
        {
            if (await registry.ResolveAsync(name, version, user.Tenant(), cancellationToken) is not { } resolved)
            {
                return ApiProblems.NotFound(ModelRegistry.NotFound(name, version));
            }

            only = resolved.Version;
        }

        try
        {
            return TypedResults.Ok(await reporter.ReportAsync(name, only, span, PerformanceReporter.ManualTrigger, cancellationToken));
        }
        catch (PerformanceReportException ex)
        {
            return ApiProblems.BadRequest(ex.Message, "Cannot judge the model's performance");
        }
    }

    public static async Task<Results<Ok<IReadOnlyList<PerformanceReport>>, ProblemHttpResult>> ListReports(
        string name, int? version, int? limit, ClaimsPrincipal user, ModelRegistry registry, PerformanceReporter reporter, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 500)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and 500 (was {limit}).");
        }

        if (!await registry.OwnsAsync(name, user.Tenant(), cancellationToken))
        {
            return ModelsApi.ModelNotFound(name);
        }

        return TypedResults.Ok(await reporter.ListAsync(name, version, limit ?? 20, cancellationToken));
    }
}
