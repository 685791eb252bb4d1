using BatchScoring.Application;
using BatchScoring.Contracts;
using BatchScoring.Data;
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

    public static async Task<Results<Accepted<JobStatus>, Ok<JobStatus>, ProblemHttpResult>> SubmitJob(
        SubmitScoringJob request, HttpRequest http, JobSubmitter submitter, CancellationToken cancellationToken)
    {
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
