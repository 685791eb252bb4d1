using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Contracts;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

public static class JobsApi
{
    public const int MaxListLimit = 1000;

    public static RouteGroupBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/jobs").WithTags("Jobs").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        api.MapPost("/", SubmitJob).WithName(nameof(SubmitJob)).WithSummary("Validate, plan and start a scoring job.")
            .RequireAuthorization(ApiScopes.Submit).ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        api.MapGet("/", ListJobs).WithName(nameof(ListJobs)).WithSummary("List jobs, newest first.")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapGet("/{id:guid}", GetJob).WithName(nameof(GetJob))
            .WithSummary("Progress and outcome of a job; with ?wait=30s, a long poll that answers when the job changes (after ?since=its updatedAt) or ends.")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapPost("/{id:guid}/cancel", CancelJob).WithName(nameof(CancelJob)).WithSummary("Stop scheduling the job's remaining chunks.")
            .RequireAuthorization(ApiScopes.Submit);
        api.MapPost("/{id:guid}/retry", RetryJob).WithName(nameof(RetryJob)).WithSummary("Re-run the chunks of a failed or cancelled job that did not succeed.")
            .RequireAuthorization(ApiScopes.Submit);
        return api;
    }

    /// <summary>Seconds a client is asked to wait (Retry-After) when the broker is unreachable.</summary>
    public const int BrokerRetryAfterSeconds = 5;

    public static async Task<Results<Accepted<JobStatus>, Ok<JobStatus>, ValidationProblem, ProblemHttpResult>> SubmitJob(
        SubmitScoringJob request, HttpRequest http, ClaimsPrincipal user, JobSubmitter submitter, BrokerReachability broker, CancellationToken cancellationToken)
    {
        if (request.IdempotencyKey is null && http.Headers.TryGetValue("Idempotency-Key", out var header) && !string.IsNullOrWhiteSpace(header))
        {
            request = request with { IdempotencyKey = header.ToString() };
        }

        if (JobRequestValidation.Validate(request) is { Count: > 0 } errors)
        {
            return ApiProblems.Invalid(errors, "Invalid job request");
        }

        // Refuse at once rather than record a job whose messages would wait for the broker: nothing is written.
        if (!broker.IsReachable(out _))
        {
            return BrokerUnavailable(http, "The message broker (RabbitMQ) is unreachable, so the job was not recorded. Retry later.");
        }

        try
        {
            // Validation, model, conflict and load failures are thrown and become problems in ApiExceptionHandler.
            var result = await submitter.SubmitAsync(request, user.Tenant(), cancellationToken);
            var status = JobQueries.ToStatus(result.Job, []);
            return result.Created ? TypedResults.Accepted($"/api/jobs/{result.Job.Id}", status) : TypedResults.Ok(status);
        }
        catch (BrokerUnavailableException ex)
        {
            // Lost between the check and the send: the job is recorded and dispatch recovery sends it when the broker is back.
            return BrokerUnavailable(
                http,
                $"The message broker (RabbitMQ) became unreachable while job {ex.JobId} was being dispatched. The job is recorded and will be sent when the broker is back; "
                + "resubmitting with the same Idempotency-Key returns it.");
        }
    }

    private static ProblemHttpResult BrokerUnavailable(HttpRequest http, string detail)
    {
        http.HttpContext.Response.Headers.RetryAfter = BrokerRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(detail, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service unavailable");
    }

    public static async Task<Results<Ok<IReadOnlyList<JobStatus>>, ProblemHttpResult>> ListJobs(
        JobQueries queries, ClaimsPrincipal user, string? state, string? model, int? limit, int? offset, CancellationToken cancellationToken)
    {
        if (state is not null && !JobQueries.StateNames.Contains(state, StringComparer.OrdinalIgnoreCase))
        {
            return ApiProblems.BadRequest($"Query parameter 'state' must be one of {string.Join(", ", JobQueries.StateNames)} (was '{state}').");
        }

        if (limit is < 1 or > MaxListLimit)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and {MaxListLimit} (was {limit}).");
        }

        if (offset is < 0)
        {
            return ApiProblems.BadRequest($"Query parameter 'offset' must not be negative (was {offset}).");
        }

        return TypedResults.Ok(await queries.ListAsync(state, model, limit ?? 50, offset ?? 0, user.Tenant(), cancellationToken));
    }

    /// <summary>The longest long poll: beyond it proxies and load balancers start cutting idle requests.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    public static async Task<Results<Ok<JobStatus>, ProblemHttpResult>> GetJob(
        Guid id, string? wait, DateTimeOffset? since, ClaimsPrincipal user, JobQueries queries, JobChangeListener changes, CancellationToken cancellationToken)
    {
        TimeSpan? waitFor = null;
        if (wait is not null)
        {
            if (ParseWait(wait) is not { } parsed)
            {
                return ApiProblems.BadRequest($"Query parameter 'wait' must be a number of seconds between 0 and {MaxWait.TotalSeconds:0}, such as 30 or 30s (was '{wait}').");
            }

            waitFor = parsed;
        }

        // Taken before the read: a change committed between the read and the wait still wakes this request.
        var changed = changes.NextChangeAsync(id);
        if (await queries.GetStatusAsync(id, user.Tenant(), cancellationToken) is not { } status)
        {
            return JobNotFound(id);
        }

        if (waitFor is not { } timeout)
        {
            return TypedResults.Ok(status);
        }

        // Any other updatedAt is a change: it is a transaction's start time, so a chunk that began earlier and committed
        // later sets an earlier one.
        var seen = since ?? status.UpdatedAt;
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (!IsFinished(status.State) && status.UpdatedAt == seen && DateTimeOffset.UtcNow < deadline)
        {
            try
            {
                await changed.WaitAsync(deadline - DateTimeOffset.UtcNow, cancellationToken);
            }
            catch (TimeoutException)
            {
                break;
            }

            changed = changes.NextChangeAsync(id);
            status = await queries.GetStatusAsync(id, user.Tenant(), cancellationToken) ?? status;
        }

        return TypedResults.Ok(status);
    }

    private static bool IsFinished(string state) => state is "succeeded" or "failed" or "cancelled";

    /// <summary>Seconds, with or without an <c>s</c> (<c>30</c>, <c>30s</c>, <c>0.5s</c>), capped at <see cref="MaxWait"/>; null when malformed.</summary>
    private static TimeSpan? ParseWait(string text)
    {
        var number = text.EndsWith('s') ? text[..^1] : text;
        return double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            && seconds >= 0 && seconds <= MaxWait.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }

    public static async Task<Results<Ok<JobStatus>, ProblemHttpResult>> CancelJob(
        Guid id, ClaimsPrincipal user, JobCommands commands, JobQueries queries, CancellationToken cancellationToken) =>
        await commands.CancelAsync(id, user.Tenant(), cancellationToken) is null
            ? JobNotFound(id)
            : TypedResults.Ok((await queries.GetStatusAsync(id, user.Tenant(), cancellationToken))!);

    public static async Task<Results<Accepted<JobStatus>, ProblemHttpResult>> RetryJob(
        Guid id, ClaimsPrincipal user, JobCommands commands, JobQueries queries, CancellationToken cancellationToken)
    {
        try
        {
            if (await commands.RetryAsync(id, user.Tenant(), cancellationToken) is null)
            {
                return JobNotFound(id);
            }
        }
        catch (InvalidOperationException ex)
        {
            return ApiProblems.Conflict(ex.Message, "Job cannot be retried");
        }

        return TypedResults.Accepted($"/api/jobs/{id}", (await queries.GetStatusAsync(id, user.Tenant(), cancellationToken))!);
    }

    private static ProblemHttpResult JobNotFound(Guid id) => ApiProblems.NotFound($"There is no job {id}.");
}
