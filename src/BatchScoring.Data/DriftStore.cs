using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>A stored reference profile: the dataset it came from and its column profiles as JSON.</summary>
public sealed record StoredProfile(string ModelName, int ModelVersion, string Source, long RowCount, string ColumnsJson, DateTimeOffset CreatedAt);

/// <summary>A stored drift report; its per-column results as JSON. <paramref name="FireId"/>: the scheduled fire (null: manual).</summary>
public sealed record StoredDriftReport(
    Guid Id, string ModelName, int ModelVersion, string Trigger, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, long RowCount,
    bool Drifted, bool EventsPublished, bool RetrainingRequested, string ColumnsJson, DateTimeOffset CreatedAt, string Verdict, string? FireId);

/// <summary>SQL of the drift tables (<c>schemas/sql/002_drift.sql</c>, <c>008_drift_verdicts_and_fires.sql</c>): profiles, samples, reports.</summary>
public sealed class DriftStore(NpgsqlDataSource dataSource)
{
    public async Task SaveProfileAsync(string model, int version, string source, long rowCount, string columnsJson, CancellationToken ct)
    {
        await using var upsert = dataSource.CreateCommand(
            """
            INSERT INTO scoring.model_profiles (model_name, model_version, source, row_count, columns)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (model_name, model_version) DO UPDATE
            SET source = excluded.source, row_count = excluded.row_count, columns = excluded.columns, created_at = now()
            """);
        upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        upsert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = source });
        upsert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rowCount });
        upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = columnsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        await upsert.ExecuteNonQueryAsync(ct);
    }

    public async Task<StoredProfile?> GetProfileAsync(string model, int version, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            "SELECT source, row_count, columns::text, created_at FROM scoring.model_profiles WHERE model_name = $1 AND model_version = $2");
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        await using var reader = await select.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new StoredProfile(model, version, reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetFieldValue<DateTimeOffset>(3))
            : null;
    }

    /// <summary>Model versions that have a profile and samples since <paramref name="since"/>: what a scheduled audit looks at.</summary>
    public async Task<IReadOnlyList<(string Model, int Version)>> ProfiledVersionsWithSamplesAsync(DateTimeOffset since, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            """
            SELECT p.model_name, p.model_version FROM scoring.model_profiles p
            WHERE EXISTS (SELECT 1 FROM scoring.drift_samples s
                          WHERE s.model_name = p.model_name AND s.model_version = p.model_version AND s.sampled_at >= $1)
            ORDER BY 1, 2
            """);
        select.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = since });
        var versions = new List<(string, int)>();
        await using var reader = await select.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            versions.Add((reader.GetString(0), reader.GetInt32(1)));
        }

        return versions;
    }

    /// <summary>Sample documents (column-major JSON) of a model version since a time, newest first, until about <paramref name="maxRows"/> rows.</summary>
    public async IAsyncEnumerable<string> ReadSamplesAsync(string model, int version, DateTimeOffset since, long maxRows, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            """
            SELECT row_count, columns::text FROM scoring.drift_samples
            WHERE model_name = $1 AND model_version = $2 AND sampled_at >= $3
            ORDER BY sampled_at DESC, id DESC
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        select.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = since });
        await using var reader = await select.ExecuteReaderAsync(ct);
        long rows = 0;
        while (rows < maxRows && await reader.ReadAsync(ct))
        {
            rows += reader.GetInt32(0);
            yield return reader.GetString(1);
        }
    }

    /// <summary>When DriftDetected and RetrainingRequested (by a drift audit or a performance report) were last published for a model version (null: never).</summary>
    public async Task<(DateTimeOffset? DriftDetected, DateTimeOffset? RetrainingRequested)> LastEventsPublishedAtAsync(string model, int version, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            """
            SELECT max(created_at) FILTER (WHERE events_published),
                   greatest(max(created_at) FILTER (WHERE retraining_requested),
                            (SELECT max(p.created_at) FROM scoring.performance_reports p  -- one cooldown whatever the reason (014)
                             WHERE p.model_name = $1 AND p.model_version = $2 AND p.retraining_requested))
            FROM scoring.drift_reports WHERE model_name = $1 AND model_version = $2
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        await using var reader = await select.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.IsDBNull(0) ? null : reader.GetFieldValue<DateTimeOffset>(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>
    /// How many of the latest judged reports of a model version, newest first, drifted without a break (at most
    /// <paramref name="limit"/>). "Insufficient data" reports judged nothing: they neither extend nor break a streak.
    /// </summary>
    public async Task<int> DriftedStreakAsync(string model, int version, int limit, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            """
            SELECT drifted FROM scoring.drift_reports
            WHERE model_name = $1 AND model_version = $2 AND verdict <> 'insufficient_data'
            ORDER BY created_at DESC, id DESC LIMIT $3
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        await using var reader = await select.ExecuteReaderAsync(ct);
        var streak = 0;
        while (await reader.ReadAsync(ct) && reader.GetBoolean(0))
        {
            streak++;
        }

        return streak;
    }

    /// <summary>Stores a report; false when its fire already stored one for the model version (a recovered fire).</summary>
    public async Task<bool> InsertReportAsync(StoredDriftReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(report);
        await using var insert = dataSource.CreateCommand(
            """
            INSERT INTO scoring.drift_reports (id, model_name, model_version, trigger, window_start, window_end, row_count, drifted, events_published, retraining_requested, columns, created_at, verdict, fire_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            ON CONFLICT (fire_id, model_name, model_version) WHERE fire_id IS NOT NULL DO NOTHING
            """);
        insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = report.Id });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.ModelName });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = report.ModelVersion });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.Trigger });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.WindowStart });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.WindowEnd });
        insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = report.RowCount });
        insert.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = report.Drifted });
        insert.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = report.EventsPublished });
        insert.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = report.RetrainingRequested });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.ColumnsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.CreatedAt });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.Verdict });
        insert.Parameters.Add(new NpgsqlParameter { Value = (object?)report.FireId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        return await insert.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>The report a scheduled fire already stored for a model version, if any.</summary>
    public async Task<StoredDriftReport?> GetFireReportAsync(string fireId, string model, int version, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            $"SELECT {ReportColumns} FROM scoring.drift_reports WHERE fire_id = $1 AND model_name = $2 AND model_version = $3");
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = fireId });
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        await using var reader = await select.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadReport(reader) : null;
    }

    private const string ReportColumns =
        "id, model_name, model_version, trigger, window_start, window_end, row_count, drifted, events_published, retraining_requested, columns::text, created_at, verdict, fire_id";

    private static StoredDriftReport ReadReport(NpgsqlDataReader reader) => new(
        reader.GetGuid(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3), reader.GetFieldValue<DateTimeOffset>(4),
        reader.GetFieldValue<DateTimeOffset>(5), reader.GetInt64(6), reader.GetBoolean(7), reader.GetBoolean(8), reader.GetBoolean(9), reader.GetString(10),
        reader.GetFieldValue<DateTimeOffset>(11), reader.GetString(12), reader.IsDBNull(13) ? null : reader.GetString(13));

    public async Task MarkEventsPublishedAsync(Guid reportId, bool driftDetected, bool retrainingRequested, CancellationToken ct)
    {
        await using var update = dataSource.CreateCommand(
            "UPDATE scoring.drift_reports SET events_published = events_published OR $2, retraining_requested = retraining_requested OR $3 WHERE id = $1");
        update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = reportId });
        update.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = driftDetected });
        update.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = retrainingRequested });
        await update.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Reports of a model, newest first (optionally of one version).</summary>
    public async Task<IReadOnlyList<StoredDriftReport>> ListReportsAsync(string model, int? version, int limit, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand(
            $"""
            SELECT {ReportColumns}
            FROM scoring.drift_reports
            WHERE model_name = $1 AND ($2::integer IS NULL OR model_version = $2)
            ORDER BY created_at DESC LIMIT $3
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter { Value = version is { } v ? v : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        var reports = new List<StoredDriftReport>();
        await using var reader = await select.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            reports.Add(ReadReport(reader));
        }

        return reports;
    }

    /// <summary>Deletes samples older than <paramref name="before"/>; returns how many.</summary>
    public async Task<int> DeleteSamplesBeforeAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var delete = dataSource.CreateCommand("DELETE FROM scoring.drift_samples WHERE sampled_at < $1");
        delete.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = before });
        return await delete.ExecuteNonQueryAsync(ct);
    }
}
