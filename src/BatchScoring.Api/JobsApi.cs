using BatchScoring.Application;
using BatchScoring.Contracts;
using BatchScoring.Data;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

public static class JobsApi
{
    public static RouteGroupBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/jobs").WithTags("Jobs");
        api.MapPost("/", SubmitJob).WithName(nameof(SubmitJob)).WithSummary("Validate, plan and start a scoring job.");
        api.MapGet("/", ListJobs).WithName(nameof(ListJobs)).WithSummary("List jobs, newest first.");
        api.MapGet("/{id:guid}", GetJob).WithName(nameof(GetJob)).WithSummary("Progress and outcome of a job.");
        api.MapPost("/{id:guid}/cancel", CancelJob).WithName(nameof(CancelJob)).WithSummary("Stop scheduling the job's remaining chunks.");
        api.MapPost("/{id:guid}/retry", RetryJob).WithName(nameof(RetryJob)).WithSummary("Re-run the chunks of a failed or cancelled job that did not succeed.");
        return api;
    }

    /// <summary>Seconds a client is asked to wait (Retry-After) when the broker is unreachable.</summary>
    public const int BrokerRetryAfterSeconds = 5;

    public static async Task<Results<Accepted<JobStatus>, Ok<JobStatus>, ProblemHttpResult>> SubmitJob(
        SubmitScoringJob request, HttpRequest http, JobSubmitter submitter, IBusControl bus, CancellationToken cancellationToken)
    {
        // Refuse at once rather than record a job whose messages would wait for the broker: nothing is written.
        if (bus.CheckHealth().Status != BusHealthStatus.Healthy)
        {
            return BrokerUnavailable(http, "The message broker (RabbitMQ) is unreachable, so the job was not recorded. Retry later.");
        }

        if (request.IdempotencyKey is null && http.Headers.TryGetValue("Idempotency-Key", out var header) && !string.IsNullOrWhiteSpace(header))
        {
            request = request with { IdempotencyKey = header.ToString() };
        }

        try
        {
            var result = await submitter.SubmitAsync(request, cancellationToken);
            var status = JobQueries.ToStatus(result.Job, []);
            return result.Created ? TypedResults.Accepted($"/api/jobs/{result.Job.Id}", status) : TypedResults.Ok(status);
        }
        catch (JobValidationException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "Invalid job request");
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

    public static async Task<Ok<IReadOnlyList<JobStatus>>> ListJobs(
        JobQueries queries, string? state, string? model, int? limit, int? offset, CancellationToken cancellationToken)
    {
        var filter = new JobListFilter
        {
            State = state is null ? null : StateText.ParseJobState(state),
            ModelName = model,
            Limit = Math.Clamp(limit ?? 50, 1, 1000),
            Offset = Math.Max(0, offset ?? 0),
        };
        return TypedResults.Ok(await queries.ListAsync(filter, cancellationToken));
    }

    public static async Task<Results<Ok<JobStatus>, NotFound>> GetJob(Guid id, JobQueries queries, CancellationToken cancellationToken) =>
        await queries.GetStatusAsync(id, cancellationToken) is { } status ? TypedResults.Ok(status) : TypedResults.NotFound();

    public static async Task<Results<Ok<JobStatus>, NotFound>> CancelJob(Guid id, JobCommands commands, JobQueries queries, CancellationToken cancellationToken)
    {
        if (await commands.CancelAsync(id, cancellationToken) is null)
        {
            return TypedResults.NotFound();
        }

        return TypedResults.Ok((await queries.GetStatusAsync(id, cancellationToken))!);
    }

    public static async Task<Results<Accepted<JobStatus>, NotFound, ProblemHttpResult>> RetryJob(
        Guid id, JobCommands commands, JobQueries queries, CancellationToken cancellationToken)
    {
        try
        {
            if (await commands.RetryAsync(id, cancellationToken) is null)
            {
                return TypedResults.NotFound();
            }
        }
        catch (InvalidOperationException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status409Conflict, title: "Job cannot be retried");
        }

        return TypedResults.Accepted($"/api/jobs/{id}", (await queries.GetStatusAsync(id, cancellationToken))!);
    }
}
