using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>One fire of a schedule as stored; <paramref name="JobState"/> is the linked job's state, when there is a job.</summary>
public sealed record StoredScheduleRun(
    Guid Id, string Tenant, string ScheduleName, string FireKey, string Kind, DateTimeOffset FireTime, DateTimeOffset StartedAt,
    string State, Guid? JobId, string? JobState, int? ModelVersion, string? Input, string? Error);

/// <summary>SQL of <c>scoring.schedule_runs</c> (<c>schemas/sql/015_schedule_runs.sql</c>): one row per fire of a schedule.</summary>
public sealed class ScheduleRunStore(NpgsqlDataSource dataSource)
{
    private const string Columns =
        "r.id, r.tenant, r.schedule_name, r.fire_key, r.kind, r.fire_time, r.started_at, r.state, r.job_id, j.state, r.model_version, r.input, r.error";

    /// <summary>The run of this fire: a new one, or the one a recovered fire (same key) already started.</summary>
    public async Task<StoredScheduleRun> StartAsync(string tenant, string schedule, string fireKey, string kind, DateTimeOffset fireTime, CancellationToken ct)
    {
        await using var insert = dataSource.CreateCommand(
            """
            INSERT INTO scoring.schedule_runs (id, tenant, schedule_name, fire_key, kind, fire_time)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (fire_key) DO NOTHING
            """);
        insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Guid.CreateVersion7() });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = fireKey });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = kind });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = fireTime.ToUniversalTime() });
        await insert.ExecuteNonQueryAsync(ct);
        return (await QueryAsync("WHERE r.fire_key = $1", [new NpgsqlParameter<string> { TypedValue = fireKey }], ct)).Single();
    }

    public async Task MarkSubmittedAsync(Guid runId, Guid jobId, int modelVersion, string input, CancellationToken ct)
    {
        await using var update = dataSource.CreateCommand(
            "UPDATE scoring.schedule_runs SET state = 'submitted', job_id = $2, model_version = $3, input = $4, error = NULL WHERE id = $1");
        update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = runId });
        update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        update.Parameters.Add(new NpgsqlParameter<int> { TypedValue = modelVersion });
        update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = input });
        await update.ExecuteNonQueryAsync(ct);
    }

    public async Task MarkFailedAsync(Guid runId, string? input, string error, CancellationToken ct)
    {
        await using var update = dataSource.CreateCommand("UPDATE scoring.schedule_runs SET state = 'failed', input = $2, error = $3 WHERE id = $1");
        update.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = runId });
        update.Parameters.Add(DbParameter.Of(input, NpgsqlDbType.Text));
        update.Parameters.Add(new NpgsqlParameter<string> { TypedValue = error });
        await update.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A schedule's runs, newest first.</summary>
    public Task<IReadOnlyList<StoredScheduleRun>> ListAsync(string tenant, string schedule, int limit, CancellationToken ct) =>
        QueryAsync(
            "WHERE r.tenant = $1 AND r.schedule_name = $2 ORDER BY r.started_at DESC, r.id DESC LIMIT $3",
            [new NpgsqlParameter<string> { TypedValue = tenant }, new NpgsqlParameter<string> { TypedValue = schedule }, new NpgsqlParameter<int> { TypedValue = limit }],
            ct);

    /// <summary>The latest run of each of the tenant's schedules.</summary>
    public async Task<IReadOnlyDictionary<string, StoredScheduleRun>> LatestAsync(string tenant, CancellationToken ct)
    {
        var runs = await QueryAsync(
            """
            WHERE r.id IN (SELECT DISTINCT ON (schedule_name) id FROM scoring.schedule_runs
                           WHERE tenant = $1 ORDER BY schedule_name, started_at DESC, id DESC)
            """,
            [new NpgsqlParameter<string> { TypedValue = tenant }],
            ct);
        return runs.ToDictionary(r => r.ScheduleName, StringComparer.Ordinal);
    }

    /// <summary>Forgets a deleted schedule's runs (its jobs stay).</summary>
    public async Task DeleteAsync(string tenant, string schedule, CancellationToken ct)
    {
        await using var delete = dataSource.CreateCommand("DELETE FROM scoring.schedule_runs WHERE tenant = $1 AND schedule_name = $2");
        delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = tenant });
        delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schedule });
        await delete.ExecuteNonQueryAsync(ct);
    }

    private async Task<IReadOnlyList<StoredScheduleRun>> QueryAsync(string where, NpgsqlParameter[] parameters, CancellationToken ct)
    {
        await using var select = dataSource.CreateCommand($"SELECT {Columns} FROM scoring.schedule_runs r LEFT JOIN scoring.jobs j ON j.id = r.job_id {where}");
        select.Parameters.AddRange(parameters);
        var runs = new List<StoredScheduleRun>();
        await using var reader = await select.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            runs.Add(new StoredScheduleRun(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetFieldValue<DateTimeOffset>(5), reader.GetFieldValue<DateTimeOffset>(6), reader.GetString(7),
                reader.IsDBNull(8) ? null : reader.GetGuid(8), reader.IsDBNull(9) ? null : reader.GetString(9),
                reader.IsDBNull(10) ? null : reader.GetInt32(10), reader.IsDBNull(11) ? null : reader.GetString(11),
                reader.IsDBNull(12) ? null : reader.GetString(12)));
        }

        return runs;
    }
}
