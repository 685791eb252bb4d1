using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchScoring.Application.Drift;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Drift;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Data.Sqlite;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// <c>batchscore demo</c>: the scoring flow in one process with no servers — a generated model and data, in-process
/// scoring to Parquet (failed rows with reasons), results loaded into an embedded SQLite database, a drift audit of
/// today's data against the reference profile, and SQL over the results. The service runs the same scoring and
/// drift code against RabbitMQ and PostgreSQL.
/// </summary>
public static class DemoCommand
{
    private const int Features = 16;
    private const int ShiftedFeatures = 2;
    private const string ModelName = "demo_churn";

    public static Command Create()
    {
        var dir = new Option<DirectoryInfo?>("--output-dir") { Description = "Where the demo writes its model, data, results and database (default: ./batchscore-demo)." }.WithLegacy("--dir");
        var rows = new Option<int>("--rows") { Description = "Rows of today's data to score.", DefaultValueFactory = _ => 200_000 };
        var command = new Command(
            "demo",
            "Run the flow in this process, no servers: model and data, scoring to Parquet, results in an embedded SQLite database, a drift audit, SQL over the results.")
        {
            dir, rows,
        };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(dir) ?? new DirectoryInfo("batchscore-demo"), parse.GetValue(rows), ct));
        return command;
    }

    private static async Task<int> RunAsync(DirectoryInfo dir, int rows, CancellationToken cancellationToken)
    {
        if (rows < 1_000)
        {
            Console.Error.WriteLine($"error: --rows must be at least 1000 (was {rows})");
            return 2;
        }

        dir.Create();
        string At(string name) => Path.Combine(dir.FullName, name);
        var names = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();

        AnsiConsole.MarkupLine($"[bold]1. Model and data[/] in {Markup.Escape(dir.FullName)}");
        var model = Model();
        await File.WriteAllBytesAsync(At("model.onnx"), model.Bytes, cancellationToken);
        await DatasetGenerator.WriteParquetAsync(At("reference.parquet"), new GeneratedDatasetOptions { Rows = 50_000, Features = Features, Seed = 1 }, cancellationToken);
        await DatasetGenerator.WriteParquetAsync(At("today.parquet"), TodayData(rows), cancellationToken);
        AnsiConsole.MarkupLine(
            $"   model.onnx (MLP {Features}-32-16-1), reference.parquet (50,000 rows), today.parquet ({rows:N0} rows; f_000 and f_001 moved by +0.6, a NaN every 10,000 rows)");

        AnsiConsole.MarkupLine("[bold]2. Scoring[/] (in process, the service's inference code; features kept next to the score for the audit)");
        string[] carried = ["region", .. names];
        foreach (var (input, output) in new[] { ("reference.parquet", "reference_scored.parquet"), ("today.parquet", "today_scored.parquet") })
        {
            var exit = await ScoreCommand.RunAsync(
                new FileInfo(At("model.onnx")), At(input), new FileInfo(At(output)), "customer_id", carried, null, 8_192, 100_000, false, cancellationToken);
            if (exit != 0)
            {
                return exit;
            }
        }

        AnsiConsole.MarkupLine("[bold]3. Results in an embedded database[/] (SQLite: results, failed_rows, drift_reports)");
        var database = At("results.db");
        File.Delete(database);
        await using var connection = new SqliteConnection($"Data Source={database}");
        await connection.OpenAsync(cancellationToken);
        await ExecuteAsync(connection, """
            CREATE TABLE results (customer_id INTEGER PRIMARY KEY, region TEXT NOT NULL, score REAL NOT NULL, model_name TEXT NOT NULL, model_version INTEGER NOT NULL, scored_at TEXT NOT NULL);
            CREATE TABLE failed_rows (row_number INTEGER NOT NULL, row_key TEXT, column_name TEXT, reason TEXT NOT NULL);
            CREATE TABLE drift_reports (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, row_count INTEGER NOT NULL, drifted INTEGER NOT NULL, columns TEXT NOT NULL);
            """, cancellationToken);
        var loaded = await LoadResultsAsync(connection, At("today_scored.parquet"), cancellationToken);
        var failed = await LoadFailedRowsAsync(connection, At("today_scored.failed.csv"), cancellationToken);
        AnsiConsole.MarkupLine($"   {loaded:N0} result rows, {failed:N0} failed rows → {Markup.Escape(database)}");

        AnsiConsole.MarkupLine("[bold]4. Drift audit[/]: today's inputs and predictions against the reference profile");
        var report = await AuditAsync(At("reference_scored.parquet"), At("today_scored.parquet"), [.. names, "score"], cancellationToken);
        await ExecuteAsync(connection, "INSERT INTO drift_reports VALUES ($id, $at, $rows, $drifted, $columns)", cancellationToken, new()
        {
            ["$id"] = report.Id.ToString(),
            ["$at"] = report.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
            ["$rows"] = report.Rows,
            ["$drifted"] = report.Drifted ? 1 : 0,
            ["$columns"] = JsonSerializer.Serialize(report.Columns, ApiClient.Json),
        });
        DriftCommand.Print(report, $"{report.Rows:N0} scored rows of today against 50,000 reference rows");

        AnsiConsole.MarkupLine("[bold]5. SQL over the results[/]");
        await QueryAsync(connection, "SELECT region, count(*) AS rows, round(avg(score), 4) AS mean_score, round(min(score), 4) AS min, round(max(score), 4) AS max FROM results GROUP BY region ORDER BY region", cancellationToken);
        await QueryAsync(connection, "SELECT column_name, count(*) AS failed_rows, min(reason) AS reason FROM failed_rows GROUP BY column_name", cancellationToken);
        AnsiConsole.MarkupLine(
            "Next: the same flow as a service — [bold]batchscore serve[/] with RabbitMQ and PostgreSQL, [bold]batchscore models register[/], "
            + "[bold]jobs submit[/], [bold]models profile[/], [bold]drift audit[/] (see README).");
        return 0;
    }

    /// <summary>The demo's model: an MLP over f_000…f_015 (names in its metadata, so inputs are found by name).</summary>
    public static MlpModel Model() =>
        SampleModels.Mlp([Features, 32, 16, 1], seed: 7, featureNames: Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray());

    /// <summary>Today's data: the reference population with f_000 and f_001 moved by +0.6, and a NaN every 10,000 rows.</summary>
    public static GeneratedDatasetOptions TodayData(int rows) => new()
    {
        Rows = rows, Features = Features, Seed = 2, NaNEvery = 10_000, Shift = 0.6f, ShiftedFeatures = ShiftedFeatures,
    };

    private static async Task<long> LoadResultsAsync(SqliteConnection connection, string scored, CancellationToken cancellationToken)
    {
        var plan = await Dataset.PlanAsync(scored, 100_000, cancellationToken);
        var columns = plan.Columns.Where(c => c.Name is "customer_id" or "region" or "score").ToArray();
        var scoredAt = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = $"INSERT INTO results VALUES ($key, $region, $score, '{ModelName}', 1, $at)";
        var key = insert.Parameters.Add("$key", SqliteType.Integer);
        var region = insert.Parameters.Add("$region", SqliteType.Text);
        var score = insert.Parameters.Add("$score", SqliteType.Real);
        insert.Parameters.AddWithValue("$at", scoredAt);
        long rows = 0;
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, columns, cancellationToken)).Batch;
            var keys = batch["customer_id"].As<long>();
            var regions = batch["region"].As<string?>();
            var scores = batch["score"].As<float>();
            for (var i = 0; i < batch.RowCount; i++)
            {
                key.Value = keys[i];
                region.Value = regions[i];
                score.Value = (double)scores[i];
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }

            rows += batch.RowCount;
        }

        await transaction.CommitAsync(cancellationToken);
        return rows;
    }

    /// <summary>The score command's failed-rows CSV, read with the service's CSV reader.</summary>
    private static async Task<long> LoadFailedRowsAsync(SqliteConnection connection, string csv, CancellationToken cancellationToken)
    {
        if (!File.Exists(csv))
        {
            return 0;
        }

        var plan = await Dataset.PlanAsync(csv, 100_000, cancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO failed_rows VALUES ($row, $key, $column, $reason)";
        long rows = 0;
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, cancellationToken)).Batch;
            for (var i = 0; i < batch.RowCount; i++)
            {
                insert.Parameters.Clear();
                insert.Parameters.AddWithValue("$row", Convert.ToInt64(batch["row_number"].GetValue(i), CultureInfo.InvariantCulture));
                insert.Parameters.AddWithValue("$key", Convert.ToString(batch["key"].GetValue(i), CultureInfo.InvariantCulture) ?? (object)DBNull.Value);
                insert.Parameters.AddWithValue("$column", Convert.ToString(batch["column"].GetValue(i), CultureInfo.InvariantCulture) ?? (object)DBNull.Value);
                insert.Parameters.AddWithValue("$reason", Convert.ToString(batch["reason"].GetValue(i), CultureInfo.InvariantCulture) ?? "");
                await insert.ExecuteNonQueryAsync(cancellationToken);
                rows++;
            }
        }

        return rows;
    }

    /// <summary>Profiles the reference results, then compares today's with the same rules as the service's audit.</summary>
    private static async Task<DriftReport> AuditAsync(string reference, string today, IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        var builders = names.Select(n => new ColumnProfileBuilder(n, ProfileColumnKind.Numeric)).ToList();
        await ForEachValueAsync(reference, names, (c, v) => builders[c].Add(v), cancellationToken);
        var accumulators = builders.Select(b => new ColumnDriftAccumulator(b.Build())).ToList();
        long rows = 0;
        await ForEachValueAsync(today, names, (c, v) =>
        {
            accumulators[c].Add(v);
            rows += c == 0 ? 1 : 0;
        }, cancellationToken);
        var columns = accumulators.Select(a => a.Compare(DriftThresholds.Default)).ToList();
        var now = DateTimeOffset.UtcNow;
        var drifted = columns.Any(c => c.Drifted);
        var verdict = drifted ? DriftVerdicts.Drift : columns.Any(c => c.Rows >= DriftThresholds.Default.MinimumSampleRows) ? DriftVerdicts.NoDrift : DriftVerdicts.InsufficientData;
        return new DriftReport(Guid.CreateVersion7(), ModelName, 1, DriftAuditor.ManualTrigger, now, now, rows, drifted, false, false, columns, now, verdict);
    }

    private static async Task ForEachValueAsync(string path, IReadOnlyList<string> names, Action<int, double> add, CancellationToken cancellationToken)
    {
        var plan = await Dataset.PlanAsync(path, 100_000, cancellationToken);
        var columns = names.Select(n => plan.FindColumn(n)!).ToArray();
        foreach (var chunk in plan.Chunks)
        {
            var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, columns, cancellationToken)).Batch;
            for (var c = 0; c < names.Count; c++)
            {
                var values = batch[names[c]].As<float>();
                for (var i = 0; i < values.Length; i++)
                {
                    add(c, values[i]);
                }
            }
        }
    }

    private static async Task QueryAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        AnsiConsole.MarkupLine($"   [grey]{Markup.Escape(sql)}[/]");
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var table = new Table().Border(TableBorder.Rounded);
        for (var i = 0; i < reader.FieldCount; i++)
        {
            table.AddColumn(reader.GetName(i));
        }

        while (await reader.ReadAsync(cancellationToken))
        {
            table.AddRow(Enumerable.Range(0, reader.FieldCount).Select(i => Markup.Escape(Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture) ?? "")).ToArray());
        }

        AnsiConsole.Write(table);
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken, Dictionary<string, object>? parameters = null)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters ?? [])
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
