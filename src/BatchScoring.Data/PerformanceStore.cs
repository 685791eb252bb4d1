using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>A results table that jobs of a model wrote to: its key column, passthrough columns and every column it has.</summary>
public sealed record ScoredTable(string Schema, string Table, string KeyColumn, IReadOnlySet<string> Passthrough, IReadOnlyList<(string Name, string DataType)> Columns);

/// <summary>Where a table's score comes from: one numeric column of a <see cref="ScoredTable"/>.</summary>
public sealed record ScoreSource(ScoredTable Table, string ScoreColumn);

/// <summary>Per model version: distinct keys scored in the window, how many have a label, and what the labelled ones look like.</summary>
public sealed record ScoredCounts(int Version, long Scored, long Labelled, bool LabelsAreZeroOrOne, bool ScoresAreProbabilities);

/// <summary>A scored row joined to its label.</summary>
public readonly record struct LabelledScore(double Score, string Label, double? LabelNumber);

/// <summary>A stored performance report; metrics and drops as JSON.</summary>
public sealed record StoredPerformanceReport(
    Guid Id, string ModelName, int ModelVersion, string Trigger, string Task, DateTimeOffset WindowStart, DateTimeOffset WindowEnd,
    long ScoredRows, long LabelledRows, string MetricsJson, Guid? BaselineReportId, string DropsJson, bool RetrainingRequested, DateTimeOffset CreatedAt);

/// <summary>
/// SQL of realised performance: finds a model's results tables from its jobs, joins their rows to <c>scoring.labels</c>
/// by key, and stores <c>scoring.performance_reports</c>. A key scored several times by a version in the window counts
/// once, with its latest score.
/// </summary>
public sealed class PerformanceStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "id, model_name, model_version, trigger, task, window_start, window_end, scored_rows, labelled_rows, metrics::text, baseline_report_id, drops::text, retraining_requested, created_at";

    /// <summary>The existing results tables of the model's jobs (<c>scoring.jobs.output_table</c>), with their columns.</summary>
    public async Task<IReadOnlyList<ScoredTable>> ScoredTablesAsync(string model, CancellationToken cancellationToken)
    {
        await using var jobs = dataSource.CreateCommand(
            """
            SELECT output_table, key_column, passthrough_columns FROM scoring.jobs
            WHERE model_name = $1 AND output_table IS NOT NULL
            """);
        jobs.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        var byTable = new Dictionary<(string Schema, string Table), (string Key, HashSet<string> Passthrough)>();
        await using (var reader = await jobs.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var name = reader.GetString(0);
                var dot = name.IndexOf('.', StringComparison.Ordinal);
                var table = dot < 0 ? (ResultTable.DefaultSchema, name) : (name[..dot], name[(dot + 1)..]);
                if (!byTable.TryGetValue(table, out var entry))
                {
                    entry = (reader.GetString(1), new HashSet<string>(StringComparer.Ordinal));
                    byTable[table] = entry;
                }

                entry.Passthrough.UnionWith(reader.GetFieldValue<string[]>(2));
            }
        }

        var tables = new List<ScoredTable>();
        foreach (var ((schema, table), (key, passthrough)) in byTable.OrderBy(t => t.Key.Schema, StringComparer.Ordinal).ThenBy(t => t.Key.Table, StringComparer.Ordinal))
        {
            await using var columns = dataSource.CreateCommand(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position");
            columns.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
            columns.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table });
            var list = new List<(string, string)>();
            await using (var reader = await columns.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    list.Add((reader.GetString(0), reader.GetString(1)));
                }
            }

            if (list.Any(c => c.Item1 == key))
            {
                tables.Add(new ScoredTable(schema, table, key, passthrough, list));
            }
        }

        return tables;
    }

    /// <summary>Per version: distinct keys scored in [<paramref name="from"/>, <paramref name="to"/>) and labelled ones.</summary>
    public async Task<IReadOnlyList<ScoredCounts>> CountAsync(
        string model, IReadOnlyList<ScoreSource> sources, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        await using var command = Command(
            model, sources, from, to,
            """
            SELECT s.model_version, count(*), count(l.key),
                   coalesce(bool_and(coalesce(l.label_number IN (0, 1), false)) FILTER (WHERE l.key IS NOT NULL), false),
                   coalesce(bool_and(s.score BETWEEN 0 AND 1) FILTER (WHERE l.key IS NOT NULL), false)
            FROM latest s LEFT JOIN scoring.labels l ON l.model_name = $1 AND l.key = s.key
            GROUP BY s.model_version ORDER BY s.model_version
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var counts = new List<ScoredCounts>();
        while (await reader.ReadAsync(cancellationToken))
        {
            counts.Add(new ScoredCounts(reader.GetInt32(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetBoolean(3), reader.GetBoolean(4)));
        }

        return counts;
    }

    /// <summary>
    /// The labelled rows of one version in the window, by ascending score (the database sorts, so memory stays flat:
    /// the caller folds them into running sums and the AUC's rank counts).
    /// </summary>
    public async IAsyncEnumerable<LabelledScore> ReadLabelledAsync(
        string model, int version, IReadOnlyList<ScoreSource> sources, DateTimeOffset from, DateTimeOffset to,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = Command(
            model, sources, from, to,
            """
            SELECT s.score, l.label, l.label_number
            FROM latest s JOIN scoring.labels l ON l.model_name = $1 AND l.key = s.key
            WHERE s.model_version = $4
            ORDER BY s.score
            """);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new LabelledScore(reader.GetDouble(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetDouble(2));
        }
    }

    public async Task InsertAsync(StoredPerformanceReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        await using var insert = dataSource.CreateCommand(
            $"INSERT INTO scoring.performance_reports ({Columns.Replace("::text", "", StringComparison.Ordinal)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)");
        insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = report.Id });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.ModelName });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = report.ModelVersion });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.Trigger });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.Task });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.WindowStart });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.WindowEnd });
        insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = report.ScoredRows });
        insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = report.LabelledRows });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.MetricsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        insert.Parameters.Add(new NpgsqlParameter { Value = (object?)report.BaselineReportId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = report.DropsJson, NpgsqlDbType = NpgsqlDbType.Jsonb });
        insert.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = report.RetrainingRequested });
        insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = report.CreatedAt });
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The version's baseline: its first report with at least <paramref name="minimumLabelled"/> labelled rows and a known task.</summary>
    public async Task<StoredPerformanceReport?> BaselineAsync(string model, int version, long minimumLabelled, CancellationToken cancellationToken)
    {
        await using var select = dataSource.CreateCommand(
            $"""
            SELECT {Columns} FROM scoring.performance_reports
            WHERE model_name = $1 AND model_version = $2 AND labelled_rows >= $3 AND task <> 'unsupported'
            ORDER BY created_at, id LIMIT 1
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        select.Parameters.Add(new NpgsqlParameter<long> { TypedValue = minimumLabelled });
        return (await ReadAsync(select, cancellationToken)).FirstOrDefault();
    }

    /// <summary>Reports of a model, newest first.</summary>
    public async Task<IReadOnlyList<StoredPerformanceReport>> ListAsync(string model, int? version, int limit, CancellationToken cancellationToken)
    {
        await using var select = dataSource.CreateCommand(
            $"""
            SELECT {Columns} FROM scoring.performance_reports
            WHERE model_name = $1 AND ($2::integer IS NULL OR model_version = $2)
            ORDER BY created_at DESC, id DESC LIMIT $3
            """);
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        select.Parameters.Add(new NpgsqlParameter { Value = (object?)version ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        return await ReadAsync(select, cancellationToken);
    }

    /// <summary>
    /// Claims the RetrainingRequested of a report: true for the one report that may publish within the cooldown. The
    /// advisory lock serialises concurrent reports of the same version (the API and the scheduler at once).
    /// </summary>
    public async Task<bool> ClaimRetrainingAsync(Guid reportId, string model, int version, DateTimeOffset cooldownStart, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockVersion = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('batchscoring.retraining:' || $1 || ':' || $2::text))", connection, transaction))
        {
            lockVersion.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
            lockVersion.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
            await lockVersion.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var claim = new NpgsqlCommand(
            """
            UPDATE scoring.performance_reports SET retraining_requested = true
            WHERE id = $3
              AND NOT EXISTS (SELECT 1 FROM scoring.performance_reports
                              WHERE model_name = $1 AND model_version = $2 AND retraining_requested AND created_at > $4)
              AND NOT EXISTS (SELECT 1 FROM scoring.drift_reports
                              WHERE model_name = $1 AND model_version = $2 AND retraining_requested AND created_at > $4);
            """,
            connection,
            transaction);
        claim.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        claim.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
        claim.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = reportId });
        claim.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = cooldownStart });
        var claimed = await claim.ExecuteNonQueryAsync(cancellationToken) == 1;
        await transaction.CommitAsync(cancellationToken);
        return claimed;
    }

    /// <summary>Gives back a claim whose RetrainingRequested was not published, so a later report may claim again.</summary>
    public async Task ReleaseRetrainingAsync(Guid reportId, CancellationToken cancellationToken)
    {
        await using var release = dataSource.CreateCommand("UPDATE scoring.performance_reports SET retraining_requested = false WHERE id = $1");
        release.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = reportId });
        await release.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<IReadOnlyList<StoredPerformanceReport>> ReadAsync(NpgsqlCommand select, CancellationToken cancellationToken)
    {
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        var reports = new List<StoredPerformanceReport>();
        while (await reader.ReadAsync(cancellationToken))
        {
            reports.Add(new StoredPerformanceReport(
                reader.GetGuid(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3), reader.GetString(4),
                reader.GetFieldValue<DateTimeOffset>(5), reader.GetFieldValue<DateTimeOffset>(6), reader.GetInt64(7), reader.GetInt64(8),
                reader.GetString(9), reader.IsDBNull(10) ? null : reader.GetGuid(10), reader.GetString(11), reader.GetBoolean(12),
                reader.GetFieldValue<DateTimeOffset>(13)));
        }

        return reports;
    }

    /// <summary>
    /// A command whose SQL starts with CTE <c>latest</c> (model_version, key, score: the latest score per version and
    /// key over every source in the window) followed by <paramref name="select"/>. Parameters: $1 model, $2 from, $3 to.
    /// Identifiers come from information_schema and are quoted.
    /// </summary>
    private NpgsqlCommand Command(string model, IReadOnlyList<ScoreSource> sources, DateTimeOffset from, DateTimeOffset to, string select)
    {
        if (sources.Count == 0)
        {
            throw new ArgumentException("No score source.", nameof(sources));
        }

        var scored = string.Join(
            "\n    UNION ALL\n    ",
            sources.Select(s =>
                $"SELECT model_version, {Quote(s.Table.KeyColumn)}::text AS key, scored_at, {Quote(s.ScoreColumn)}::double precision AS score "
                + $"FROM {Quote(s.Table.Schema)}.{Quote(s.Table.Table)} WHERE model_name = $1 AND scored_at >= $2 AND scored_at < $3"));
        var command = dataSource.CreateCommand(
            $"""
            WITH scored AS (
                {scored}
            ), latest AS (
                SELECT DISTINCT ON (model_version, key) model_version, key, score FROM scored
                WHERE score IS NOT NULL AND score <> 'NaN'::double precision -- NaN is no prediction (and would sort last)
                ORDER BY model_version, key, scored_at DESC
            )
            {select}
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = from });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = to });
        return command;
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
