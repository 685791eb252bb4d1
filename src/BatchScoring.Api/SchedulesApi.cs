using System.Security.Claims;
using BatchScoring.Application.Schedules;
using BatchScoring.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

/// <summary>
/// <c>/api/schedules</c>: recurring scoring jobs (docs/schedules.md). Reads need the read scope, changes the submit
/// scope (a schedule submits jobs). Invalid fields are a 400 naming each field; unknown schedules 404; a taken name 409.
/// </summary>
public static class SchedulesApi
{
    public const int MaxRunsLimit = 1000;

    public static RouteGroupBuilder MapSchedulesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/schedules").WithTags("Schedules").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        api.MapPost("/", CreateSchedule).WithName(nameof(CreateSchedule)).WithSummary("Create a schedule that submits a job on a cron expression.")
            .RequireAuthorization(ApiScopes.Submit).ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict);
        api.MapGet("/", ListSchedules).WithName(nameof(ListSchedules)).WithSummary("The schedules, with their last and next run.")
            .RequireAuthorization(ApiScopes.Read);
        api.MapGet("/{name}", GetSchedule).WithName(nameof(GetSchedule)).WithSummary("One schedule, with its last and next run.")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/{name}/runs", ListScheduleRuns).WithName(nameof(ListScheduleRuns)).WithSummary("A schedule's runs, newest first, each with its job.")
            .RequireAuthorization(ApiScopes.Read).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapPost("/{name}/pause", PauseSchedule).WithName(nameof(PauseSchedule)).WithSummary("Stop firing until resumed.")
            .RequireAuthorization(ApiScopes.Submit).ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/{name}/resume", ResumeSchedule).WithName(nameof(ResumeSchedule)).WithSummary("Fire again from the next cron time (missed fires are not made up).")
            .RequireAuthorization(ApiScopes.Submit).ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/{name}/run-now", RunScheduleNow).WithName(nameof(RunScheduleNow))
            .WithSummary("Fire once now; the optional body {\"at\": time} fills the placeholders as if fired then.")
            .RequireAuthorization(ApiScopes.Submit).ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapDelete("/{name}", DeleteSchedule).WithName(nameof(DeleteSchedule)).WithSummary("Delete the schedule and its run history (its jobs stay); answers the schedule as it was.")
            .RequireAuthorization(ApiScopes.Submit).ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    public static async Task<Results<Created<ScheduleInfo>, ValidationProblem, ProblemHttpResult>> CreateSchedule(
        CreateSchedule request, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        await Handle(async () =>
        {
            var info = await schedules.CreateAsync(request, user.Tenant(), cancellationToken);
            return TypedResults.Created($"/api/schedules/{info.Name}", info);
        });

    public static async Task<Ok<IReadOnlyList<ScheduleInfo>>> ListSchedules(ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        TypedResults.Ok(await schedules.ListAsync(user.Tenant(), cancellationToken));

    public static async Task<Results<Ok<ScheduleInfo>, ValidationProblem, ProblemHttpResult>> GetSchedule(
        string name, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        await Handle(async () => TypedResults.Ok(await schedules.GetAsync(name, user.Tenant(), cancellationToken)));

    public static async Task<Results<Ok<IReadOnlyList<ScheduleRunInfo>>, ValidationProblem, ProblemHttpResult>> ListScheduleRuns(
        string name, int? limit, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxRunsLimit)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and {MaxRunsLimit} (was {limit}).");
        }

        return await Handle(async () => TypedResults.Ok(await schedules.RunsAsync(name, user.Tenant(), limit ?? 20, cancellationToken)));
    }

    public static async Task<Results<Ok<ScheduleInfo>, ValidationProblem, ProblemHttpResult>> PauseSchedule(
        string name, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        await Handle(async () => TypedResults.Ok(await schedules.PauseAsync(name, user.Tenant(), cancellationToken)));

    public static async Task<Results<Ok<ScheduleInfo>, ValidationProblem, ProblemHttpResult>> ResumeSchedule(
        string name, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        await Handle(async () => TypedResults.Ok(await schedules.ResumeAsync(name, user.Tenant(), cancellationToken)));

    public static async Task<Results<Accepted<ScheduleRunInfo>, ValidationProblem, ProblemHttpResult>> RunScheduleNow(
        string name, HttpRequest http, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken)
    {
        // The body is optional: read it only when one was sent.
        RunScheduleNow? body = null;
        if (http.ContentLength is > 0 || http.Headers.TransferEncoding.Count > 0)
        {
            body = await http.ReadFromJsonAsync<RunScheduleNow>(cancellationToken);
        }

        return await Handle(async () =>
        {
            var run = await schedules.RunNowAsync(name, user.Tenant(), body?.At, cancellationToken);
            return TypedResults.Accepted($"/api/schedules/{name}/runs", run);
        });
    }

    public static async Task<Results<Ok<ScheduleInfo>, ValidationProblem, ProblemHttpResult>> DeleteSchedule(
        string name, ClaimsPrincipal user, ScheduleService schedules, CancellationToken cancellationToken) =>
        await Handle(async () => TypedResults.Ok(await schedules.DeleteAsync(name, user.Tenant(), cancellationToken)));

    /// <summary>The service's expected failures as problems: 400 naming the fields, 404, 409, 503 when the store is unreachable.</summary>
    private static async Task<Results<T, ValidationProblem, ProblemHttpResult>> Handle<T>(Func<Task<T>> action)
        where T : IResult
    {
        try
        {
            return await action();
        }
        catch (ScheduleValidationException ex)
        {
            return ApiProblems.Invalid(ex.Errors.ToDictionary(e => e.Key, e => e.Value), "Invalid schedule");
        }
        catch (ScheduleNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
        catch (ScheduleExistsException ex)
        {
            return ApiProblems.Conflict(ex.Message, "Schedule exists");
        }
        catch (ScheduleStateException ex)
        {
            return ApiProblems.Conflict(ex.Message, "Schedule paused");
        }
        catch (Quartz.JobPersistenceException)
        {
            return TypedResults.Problem(
                "The schedule store (PostgreSQL) could not be reached; nothing was changed. Retry later.",
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "Service unavailable");
        }
    }
}
