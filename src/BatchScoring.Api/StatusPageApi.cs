using System.Security.Claims;
using System.Text;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Data;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

/// <summary>A chunk of a job as <c>GET /api/jobs/{id}/chunks</c> lists it.</summary>
public sealed record JobChunkInfo(
    int Index, string State, long RowStart, long RowCount, long ScoredRows, long FailedRows, int Attempts, string? Worker, string? Error,
    DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt);

/// <summary>A row a job could not score, as <c>GET /api/jobs/{id}/failed-rows</c> lists it.</summary>
/// <param name="RowKeyValue">The key with its type as read (a JSON number, string or boolean); null when not recorded.</param>
public sealed record JobFailedRowInfo(int? Chunk, long RowNumber, string? RowKey, JsonElement? RowKeyValue, string? Column, string Reason, DateTimeOffset RecordedAt);

/// <summary>A started scheduler as <c>GET /api/service</c> lists it.</summary>
public sealed record SchedulerInfo(string Instance, DateTimeOffset LastCheckIn, double CheckInIntervalSeconds, bool Alive);

/// <summary>The chunk queue as <c>GET /api/service</c> reports it: chunk messages waiting and workers consuming.</summary>
public sealed record ChunkQueueInfo(string Queue, long ReadyMessages, long Consumers);

/// <summary>
/// What runs behind the API, as <c>GET /api/service</c> answers it: the started schedulers (none alive: lost chunk
/// messages are not re-sent, abandoned jobs not finished, schedules and drift audits not fired), when the chunk
/// reconciler last fired, and the chunk queue (no consumer: no worker scores; null with <c>ChunkQueueError</c> when
/// RabbitMQ could not be asked).
/// </summary>
public sealed record ServiceStatus(
    DateTimeOffset CheckedAt, IReadOnlyList<SchedulerInfo> Schedulers, DateTimeOffset? ReconcilerFiredAt, ChunkQueueInfo? ChunkQueue, string? ChunkQueueError);

/// <summary>
/// The status page at <c>/</c>: a static shell and script (no data in them, so they need no key) that poll the JSON API
/// with the key the user gives (read scope); drift reports come as HTML drawn by <see cref="DriftReportHtml"/>.
/// Also the job detail reads the page needs: a job's chunks and failed rows.
/// </summary>
public static class StatusPageApi
{
    public const int MaxFailedRows = 1000;

    private static readonly Lazy<string> Shell = new(() => Resource("StatusPage.index.html").Replace("/*DRIFT_STYLES*/", DriftReportHtml.Styles, StringComparison.Ordinal));
    private static readonly Lazy<string> Script = new(() => Resource("StatusPage.page.js"));

    public static IEndpointRouteBuilder MapStatusPage(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => Page(Shell.Value, "text/html; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/status/page.js", () => Page(Script.Value, "text/javascript; charset=utf-8")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/status/models/{name}/drift", DriftFragment).RequireAuthorization(ApiScopes.Read).ExcludeFromDescription();

        app.MapGet("/api/service", GetService).WithTags("Service").WithName(nameof(GetService))
            .WithSummary("The started schedulers (alive or not), when the chunk reconciler last fired, and the chunk queue's messages and consumers.")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);

        var jobs = app.MapGroup("/api/jobs").WithTags("Jobs").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        jobs.MapGet("/{id:guid}/chunks", ListChunks).WithName(nameof(ListChunks)).WithSummary("A job's chunks: state, rows, attempts, worker and error.")
            .RequireAuthorization(ApiScopes.Read);
        jobs.MapGet("/{id:guid}/failed-rows", ListFailedRows).WithName(nameof(ListFailedRows)).WithSummary("Rows the job could not score, with the reason (?limit=, default 100).")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    public static async Task<Ok<ServiceStatus>> GetService(SchedulerCluster cluster, IChunkQueueProbe chunkQueue, TimeProvider clock, CancellationToken cancellationToken)
    {
        var state = await cluster.ReadAsync(cancellationToken);
        var queue = await chunkQueue.ReadAsync(cancellationToken);
        return TypedResults.Ok(new ServiceStatus(
            clock.GetUtcNow(),
            [.. state.Schedulers.Select(s => new SchedulerInfo(s.Instance, s.LastCheckIn, s.CheckInInterval.TotalSeconds, s.Alive))],
            state.ReconcilerFiredAt,
            queue.State is { } q ? new ChunkQueueInfo(q.Queue, q.ReadyMessages, q.Consumers) : null,
            queue.Error));
    }

    public static async Task<Results<Ok<IReadOnlyList<JobChunkInfo>>, ProblemHttpResult>> ListChunks(
        Guid id, ClaimsPrincipal user, JobQueries queries, JobStore store, CancellationToken cancellationToken)
    {
        if (await queries.GetStatusAsync(id, user.Tenant(), cancellationToken) is null)
        {
            return ApiProblems.NotFound($"There is no job {id}.");
        }

        var chunks = await store.GetChunksAsync(id, cancellationToken);
        return TypedResults.Ok<IReadOnlyList<JobChunkInfo>>([.. chunks.OrderBy(c => c.ChunkIndex).Select(c => new JobChunkInfo(
            c.ChunkIndex, StateText.ToDb(c.State), c.RowStart, c.RowCount, c.ScoredRows, c.FailedRows, c.Attempts, c.Worker, c.Error ?? c.LastError, c.StartedAt, c.FinishedAt))]);
    }

    public static async Task<Results<Ok<IReadOnlyList<JobFailedRowInfo>>, ProblemHttpResult>> ListFailedRows(
        Guid id, int? limit, ClaimsPrincipal user, JobQueries queries, JobStore store, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxFailedRows)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and {MaxFailedRows} (was {limit}).");
        }

        if (await queries.GetStatusAsync(id, user.Tenant(), cancellationToken) is null)
        {
            return ApiProblems.NotFound($"There is no job {id}.");
        }

        var rows = await store.GetFailedRowsAsync(id, limit ?? 100, cancellationToken);
        return TypedResults.Ok<IReadOnlyList<JobFailedRowInfo>>([.. rows.Select(r => new JobFailedRowInfo(r.ChunkIndex, r.RowNumber, r.RowKey, KeyValue(r.RowKeyJson), r.ColumnName, r.Reason, r.RecordedAt))]);
    }

    private static JsonElement? KeyValue(string? json) => json is null ? null : JsonElement.Parse(json);

    /// <summary>The newest drift reports of a model as HTML sections (the same markup as <c>drift reports --html</c>).</summary>
    public static async Task<Results<ContentHttpResult, ProblemHttpResult>> DriftFragment(
        string name, int? limit, ClaimsPrincipal user, ModelRegistry registry, DriftAuditor auditor, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 50)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and 50 (was {limit}).");
        }

        if (!await registry.OwnsAsync(name, user.Tenant(), cancellationToken))
        {
            return ModelsApi.ModelNotFound(name);
        }

        var reports = await auditor.ListAsync(name, null, limit ?? 5, cancellationToken);
        var html = new StringBuilder();
        if (reports.Count == 0)
        {
            html.Append("<p>No drift reports for ").Append(System.Net.WebUtility.HtmlEncode(name)).Append(" yet (<code>drift audit --name …</code>).</p>");
        }

        foreach (var report in reports)
        {
            html.Append(DriftReportHtml.Report(report));
        }

        return TypedResults.Content(html.ToString(), "text/html; charset=utf-8");
    }

    private static IResult Page(string content, string contentType) => new PageResult(content, contentType);

    private static string Resource(string name)
    {
        using var stream = typeof(StatusPageApi).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"Resource {name} is missing from the build.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>The shell and script with headers that keep them from being framed or run with scripts from elsewhere.</summary>
    private sealed class PageResult(string content, string contentType) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            var headers = httpContext.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
            headers.XContentTypeOptions = "nosniff";
            headers.CacheControl = "no-store";
            httpContext.Response.ContentType = contentType;
            return httpContext.Response.WriteAsync(content, httpContext.RequestAborted);
        }
    }
}
