using BatchScoring.Application.Challengers;
using BatchScoring.Contracts;
using BatchScoring.Data;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>
/// Read side of the status API: job status with rate and ETA, and a summary of failure reasons. Every read takes the
/// caller's tenant: another tenant's job is answered exactly like a job that does not exist.
/// </summary>
public sealed class JobQueries(JobStore store, ChallengerComparisons challengers, NpgsqlDataSource dataSource)
{
    /// <summary>The job states as the API spells them (<c>queued</c>, <c>running</c>, …).</summary>
    public static IReadOnlyList<string> StateNames { get; } = Enum.GetValues<JobState>().Select(StateText.ToDb).ToArray();

    /// <summary>The tenant's job; null when there is none.</summary>
    public async Task<JobStatus?> GetStatusAsync(Guid id, string tenant, CancellationToken cancellationToken)
    {
        var job = await store.GetJobAsync(id, cancellationToken);
        if (job is null || job.Tenant != tenant)
        {
            return null;
        }

        var failures = await store.CountFailureReasonsAsync(id, 5, cancellationToken);
        var stages = await StageSeconds.SumForJobAsync(dataSource, id, cancellationToken);
        var status = ToStatus(job, failures.Select(f => new FailureReasonCount(f.Reason, f.Rows)).ToArray()) with
        {
            Stages = new JobStageSeconds(stages.Read, stages.Convert, stages.Infer, stages.Copy, stages.Parquet, stages.Wait),
        };
        return status.Challenger is { } challenger
            ? status with { Challenger = challenger with { Comparison = await challengers.CurrentAsync(job, cancellationToken) } }
            : status;
    }

    /// <summary>
    /// The tenant's jobs, newest first, in a state (one of <see cref="StateNames"/>, any case; null: every state) and of
    /// a model (null: every model).
    /// </summary>
    public async Task<IReadOnlyList<JobStatus>> ListAsync(string? state, string? model, int limit, int offset, string tenant, CancellationToken cancellationToken)
    {
        var filter = new JobListFilter
        {
            State = state is null ? null : StateText.ParseJobState(state.ToLowerInvariant()),
            ModelName = model,
            Limit = limit,
            Offset = offset,
            Tenant = tenant,
        };
        var jobs = await store.ListJobsAsync(filter, cancellationToken);
        return jobs.Select(j => ToStatus(j, [])).ToArray();
    }

    public static JobStatus ToStatus(JobEntity job, IReadOnlyList<FailureReasonCount> failures)
    {
        double? rate = null;
        double? eta = null;
        var finished = job.ScoredRows + job.FailedRows;
        if (job.StartedAt is { } started)
        {
            var elapsed = ((job.FinishedAt ?? DateTimeOffset.UtcNow) - started).TotalSeconds;
            if (elapsed > 0 && finished > 0)
            {
                rate = finished / elapsed;
                if (job.State == JobState.Running)
                {
                    eta = Math.Max(0, job.TotalRows - finished) / rate;
                }
            }
        }

        return new JobStatus
        {
            Id = job.Id,
            State = StateText.ToDb(job.State),
            Model = job.ModelName,
            ModelVersion = job.ModelVersion,
            ModelSha256 = job.ModelSha256,
            Input = job.InputUri,
            TotalRows = job.TotalRows,
            ScoredRows = job.ScoredRows,
            FailedRows = job.FailedRows,
            ChunksTotal = job.ChunksTotal,
            ChunksDone = job.ChunksDone,
            ChunksFailed = job.ChunksFailed,
            RowsPerSecond = rate,
            EtaSeconds = eta,
            OutputTable = job.OutputTable,
            OutputParquet = job.OutputParquet,
            Error = job.Error,
            FailureSummary = failures,
            CreatedAt = job.CreatedAt,
            StartedAt = job.StartedAt,
            FinishedAt = job.FinishedAt,
            Challenger = ChallengerComparisons.StatusOf(job),
            UpdatedAt = job.UpdatedAt,
        };
    }
}
