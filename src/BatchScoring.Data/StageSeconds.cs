using Npgsql;

namespace BatchScoring.Data;

/// <summary>
/// Seconds spent in each stage of scoring, for one chunk (columns <c>*_seconds</c> of <c>scoring.chunks</c>) or summed
/// over a job's chunks. See docs/job-timing.md.
/// </summary>
public sealed record StageSeconds(double Read, double Convert, double Infer, double Copy, double Parquet, double Wait)
{
    public static StageSeconds Zero { get; } = new(0, 0, 0, 0, 0, 0);

    /// <summary>Stage sums of a job's chunks (committed chunks only: a failed or interrupted attempt records none).</summary>
    public static async Task<StageSeconds> SumForJobAsync(NpgsqlDataSource dataSource, Guid jobId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(
            """
            SELECT coalesce(sum(read_seconds), 0), coalesce(sum(convert_seconds), 0), coalesce(sum(infer_seconds), 0),
                   coalesce(sum(copy_seconds), 0), coalesce(sum(parquet_seconds), 0), coalesce(sum(wait_seconds), 0)
            FROM scoring.chunks WHERE job_id = $1
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new StageSeconds(reader.GetDouble(0), reader.GetDouble(1), reader.GetDouble(2), reader.GetDouble(3), reader.GetDouble(4), reader.GetDouble(5));
    }

    /// <summary>Sets the chunk's stage columns (in the chunk's commit transaction).</summary>
    internal NpgsqlBatchCommand UpdateChunkCommand(Guid jobId, int chunkIndex)
    {
        var command = new NpgsqlBatchCommand(
            """
            UPDATE scoring.chunks
            SET read_seconds = $3, convert_seconds = $4, infer_seconds = $5, copy_seconds = $6, parquet_seconds = $7, wait_seconds = $8
            WHERE job_id = $1 AND chunk_index = $2
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        foreach (var seconds in new[] { Read, Convert, Infer, Copy, Parquet, Wait })
        {
            command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = seconds });
        }

        return command;
    }
}
