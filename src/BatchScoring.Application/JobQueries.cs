using BatchScoring.Contracts;
using BatchScoring.Data;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>Read side of the status API: job status with rate and ETA, and a summary of failure reasons.</summary>
public sealed class JobQueries(JobStore store, NpgsqlDataSource dataSource)
{
    public async Task<JobStatus?> GetStatusAsync(Guid id, CancellationToken cancellationToken)
    {
        var job = await store.GetJobAsync(id, cancellationToken);
        return job is null ? null : ToStatus(job, await FailureSummaryAsync(id, cancellationToken));
    }

    public async Task<IReadOnlyList<JobStatus>> ListAsync(JobListFilter filter, CancellationToken cancellationToken)
    {
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
        };
    }

    private async Task<IReadOnlyList<FailureReasonCount>> FailureSummaryAsync(Guid id, CancellationToken cancellationToken)
    {
        // Reasons quote the offending value; group by the text before the first quote so "NaN in f_000" rows aggregate.
        const string Sql =
            """
            SELECT coalesce(column_name, '*') || ': ' || split_part(reason, '''', 1) AS kind, count(*)
            FROM scoring.failed_rows WHERE job_id = $1
            GROUP BY 1 ORDER BY 2 DESC LIMIT 5
            """;
        await using var command = dataSource.CreateCommand(Sql);
        command.Parameters.AddWithValue(id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<FailureReasonCount>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new FailureReasonCount(reader.GetString(0).TrimEnd(), reader.GetInt64(1)));
        }

        return result;
    }
}
