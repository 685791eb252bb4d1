using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>One chunk's comparison of champion and challenger (a row of <c>scoring.challenger_chunk_stats</c>).</summary>
public sealed record ChallengerChunkStats(
    int ChunkIndex,
    long RowsCompared,
    long ChallengerFailedRows,
    long LabelsCompared,
    long LabelsAgreed,
    long DiffZeroCount,
    int[] DiffBuckets,
    long[] DiffCounts,
    double? DiffMax);

/// <summary>A job's merged comparison (a row of <c>scoring.challenger_comparisons</c>).</summary>
public sealed record ChallengerComparisonRow(
    Guid JobId,
    string ChampionModel,
    int ChampionVersion,
    string ChallengerModel,
    int ChallengerVersion,
    string JobState,
    long RowsCompared,
    long ChallengerFailedRows,
    long LabelsCompared,
    double? AgreementRate,
    string? ChampionScoreColumn,
    string? ChallengerScoreColumn,
    double? DiffP50,
    double? DiffP90,
    double? DiffP99,
    double? DiffMax,
    string? RealisedMetricsJson,
    DateTimeOffset ComputedAt);

/// <summary>Champion / challenger comparisons: per-chunk partial aggregates and the merged result per job (migration 013).</summary>
public sealed class ChallengerStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Writes a chunk's comparison in the chunk's transaction (on <see cref="ChunkCommit.Connection"/>), so it commits
    /// with the chunk's result rows or not at all.
    /// </summary>
    public static async Task WriteChunkStatsAsync(ChunkCommit commit, ChallengerChunkStats stats, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(commit);
        ArgumentNullException.ThrowIfNull(stats);
        await using var command = new NpgsqlCommand(
            """
            INSERT INTO scoring.challenger_chunk_stats
                (job_id, chunk_index, rows_compared, challenger_failed_rows, labels_compared, labels_agreed,
                 diff_zero_count, diff_buckets, diff_counts, diff_max)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (job_id, chunk_index) DO UPDATE SET
                rows_compared = excluded.rows_compared, challenger_failed_rows = excluded.challenger_failed_rows,
                labels_compared = excluded.labels_compared, labels_agreed = excluded.labels_agreed,
                diff_zero_count = excluded.diff_zero_count, diff_buckets = excluded.diff_buckets,
                diff_counts = excluded.diff_counts, diff_max = excluded.diff_max
            """,
            commit.Connection);
        command.Parameters.Add(DbParameter.Of(commit.JobId, NpgsqlDbType.Uuid));
        command.Parameters.Add(DbParameter.Of(stats.ChunkIndex, NpgsqlDbType.Integer));
        command.Parameters.Add(DbParameter.Of(stats.RowsCompared, NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.ChallengerFailedRows, NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.LabelsCompared, NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.LabelsAgreed, NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.DiffZeroCount, NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.DiffBuckets, NpgsqlDbType.Array | NpgsqlDbType.Integer));
        command.Parameters.Add(DbParameter.Of(stats.DiffCounts, NpgsqlDbType.Array | NpgsqlDbType.Bigint));
        command.Parameters.Add(DbParameter.Of(stats.DiffMax, NpgsqlDbType.Double));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The comparisons of the job's committed chunks.</summary>
    public async Task<IReadOnlyList<ChallengerChunkStats>> GetChunkStatsAsync(Guid jobId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            """
            SELECT chunk_index, rows_compared, challenger_failed_rows, labels_compared, labels_agreed,
                   diff_zero_count, diff_buckets, diff_counts, diff_max
            FROM scoring.challenger_chunk_stats WHERE job_id = $1 ORDER BY chunk_index
            """);
        command.Parameters.Add(DbParameter.Of(jobId, NpgsqlDbType.Uuid));
        var stats = new List<ChallengerChunkStats>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            stats.Add(new ChallengerChunkStats(
                reader.GetInt32(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5),
                reader.GetFieldValue<int[]>(6), reader.GetFieldValue<long[]>(7), reader.IsDBNull(8) ? null : reader.GetDouble(8)));
        }

        return stats;
    }

    public async Task UpsertComparisonAsync(ChallengerComparisonRow row, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(row);
        await using var command = dataSource.CreateCommand(
            """
            INSERT INTO scoring.challenger_comparisons
                (job_id, champion_model, champion_version, challenger_model, challenger_version, job_state, rows_compared,
                 challenger_failed_rows, labels_compared, agreement_rate, champion_score_column, challenger_score_column,
                 diff_p50, diff_p90, diff_p99, diff_max, realised_metrics, computed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
            ON CONFLICT (job_id) DO UPDATE SET
                job_state = excluded.job_state, rows_compared = excluded.rows_compared,
                challenger_failed_rows = excluded.challenger_failed_rows, labels_compared = excluded.labels_compared,
                agreement_rate = excluded.agreement_rate, champion_score_column = excluded.champion_score_column,
                challenger_score_column = excluded.challenger_score_column, diff_p50 = excluded.diff_p50,
                diff_p90 = excluded.diff_p90, diff_p99 = excluded.diff_p99, diff_max = excluded.diff_max,
                realised_metrics = excluded.realised_metrics, computed_at = now()
            """);
        var p = command.Parameters;
        p.Add(DbParameter.Of(row.JobId, NpgsqlDbType.Uuid));
        p.Add(DbParameter.Of(row.ChampionModel, NpgsqlDbType.Text));
        p.Add(DbParameter.Of(row.ChampionVersion, NpgsqlDbType.Integer));
        p.Add(DbParameter.Of(row.ChallengerModel, NpgsqlDbType.Text));
        p.Add(DbParameter.Of(row.ChallengerVersion, NpgsqlDbType.Integer));
        p.Add(DbParameter.Of(row.JobState, NpgsqlDbType.Text));
        p.Add(DbParameter.Of(row.RowsCompared, NpgsqlDbType.Bigint));
        p.Add(DbParameter.Of(row.ChallengerFailedRows, NpgsqlDbType.Bigint));
        p.Add(DbParameter.Of(row.LabelsCompared, NpgsqlDbType.Bigint));
        p.Add(DbParameter.Of(row.AgreementRate, NpgsqlDbType.Double));
        p.Add(DbParameter.Of(row.ChampionScoreColumn, NpgsqlDbType.Text));
        p.Add(DbParameter.Of(row.ChallengerScoreColumn, NpgsqlDbType.Text));
        p.Add(DbParameter.Of(row.DiffP50, NpgsqlDbType.Double));
        p.Add(DbParameter.Of(row.DiffP90, NpgsqlDbType.Double));
        p.Add(DbParameter.Of(row.DiffP99, NpgsqlDbType.Double));
        p.Add(DbParameter.Of(row.DiffMax, NpgsqlDbType.Double));
        p.Add(DbParameter.Of(row.RealisedMetricsJson, NpgsqlDbType.Jsonb));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The stored comparison of a job; null until the job ended.</summary>
    public async Task<ChallengerComparisonRow?> GetComparisonAsync(Guid jobId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            """
            SELECT job_id, champion_model, champion_version, challenger_model, challenger_version, job_state, rows_compared,
                   challenger_failed_rows, labels_compared, agreement_rate, champion_score_column, challenger_score_column,
                   diff_p50, diff_p90, diff_p99, diff_max, realised_metrics::text, computed_at
            FROM scoring.challenger_comparisons WHERE job_id = $1
            """);
        command.Parameters.Add(DbParameter.Of(jobId, NpgsqlDbType.Uuid));
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        double? D(int i) => reader.IsDBNull(i) ? null : reader.GetDouble(i);
        string? S(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
        return new ChallengerComparisonRow(
            reader.GetGuid(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3), reader.GetInt32(4), reader.GetString(5),
            reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), D(9), S(10), S(11), D(12), D(13), D(14), D(15), S(16),
            reader.GetFieldValue<DateTimeOffset>(17));
    }

    /// <summary>
    /// Realised metrics of one version's results against delayed labels (<c>scoring.labels</c>, by model name and the key
    /// as text): null when no key of the job has a label. Classifiers are scored by accuracy (predicted label as text =
    /// label), others by RMSE and MAE of <paramref name="scoreColumn"/> against the numeric label.
    /// </summary>
    public async Task<(long Rows, double? Accuracy, double? Rmse, double? Mae)?> TryComputeRealisedMetricsAsync(
        string resultTable, Guid jobId, string modelName, string keyColumn, string? labelColumn, string? scoreColumn, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(resultTable);
        if (labelColumn is null && scoreColumn is null)
        {
            return null;
        }

        var (schema, table) = ResultTable.ParseQualifiedName(resultTable);
        var predicted = labelColumn is null ? null : $"r.{ResultTable.Quote(labelColumn)}::text";
        var score = scoreColumn is null ? null : $"r.{ResultTable.Quote(scoreColumn)}::double precision";
        var sql = $"""
            SELECT count(*),
                   {(predicted is null ? "NULL::double precision" : $"avg(CASE WHEN {predicted} = l.label THEN 1.0 ELSE 0.0 END)")},
                   {(predicted is null && score is not null ? $"sqrt(avg(power({score} - l.label_number, 2)))" : "NULL::double precision")},
                   {(predicted is null && score is not null ? $"avg(abs({score} - l.label_number))" : "NULL::double precision")}
            FROM {ResultTable.Quote(schema)}.{ResultTable.Quote(table)} AS r
            JOIN scoring.labels AS l ON l.model_name = $2 AND l.key = r.{ResultTable.Quote(keyColumn)}::text
            WHERE r.job_id = $1
            """;
        try
        {
            await using var command = dataSource.CreateCommand(sql);
            command.Parameters.Add(DbParameter.Of(jobId, NpgsqlDbType.Uuid));
            command.Parameters.Add(DbParameter.Of(modelName, NpgsqlDbType.Text));
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            var rows = reader.GetInt64(0);
            return rows == 0
                ? null
                : (rows, reader.IsDBNull(1) ? null : reader.GetDouble(1), reader.IsDBNull(2) ? null : reader.GetDouble(2), reader.IsDBNull(3) ? null : reader.GetDouble(3));
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.InvalidTextRepresentation)
        {
            // Labels that do not compare with this model's outputs: no realised metrics rather than no comparison.
            return null;
        }
    }
}
