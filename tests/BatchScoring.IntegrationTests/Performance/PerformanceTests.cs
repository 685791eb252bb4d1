using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BatchScoring.Application.Performance;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Api;
using BatchScoring.IntegrationTests.Cli;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Performance;

/// <summary>
/// Delayed labels end to end: a job scores rows into a results table, labels arrive from Parquet, CSV and a SQL source,
/// and the realised metrics (API, CLI, the Quartz schedule) equal the ones this test computes from the scored rows and
/// the labels on its own. A drop against the baseline publishes RetrainingRequested once per cooldown.
/// </summary>
public sealed class PerformanceTests(ServerFixture servers)
{
    private const int Features = 4;
    private const int Rows = 600;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Labels_from_parquet_csv_and_sql_join_scored_rows_and_binary_metrics_match_an_independent_computation()
    {
        var warehouse = await servers.CreateDatabaseAsync("perf-dw", Ct);
        await using var host = await ServiceTestHost.StartAsync(servers, "perf-bin", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Sources:warehouse"] = warehouse,
            // Only a report with every label may become the baseline: the scheduled reports run while labels arrive.
            ["BatchScoring:Performance:MinimumLabelledRows"] = "400",
            ["BatchScoring:Performance:Schedule"] = "0/2 * * * * ?",
        });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 6, 1], seed: 11, featureNames: Names()).Bytes, Ct);
        await RunJobAsync(host, WriteFeatures(host, "features.csv", seed: 1));
        var scores = await ScoresAsync(host);
        Assert.Equal(Rows, scores.Count);

        // Outcomes drawn with the model's own probability, so the AUC is well above one half but not 1.
        var random = new Random(5);
        var truth = Enumerable.Range(0, 400).ToDictionary(id => (long)id, id => random.NextDouble() < scores[id]);

        // Parquet (two row groups) for keys 0–249, with keys 200–249 wrong on purpose; CSV for 200–319 replaces them.
        var parquet = Path.Combine(host.WorkDir, "labels.parquet");
        await using (var writer = await ParquetBatchWriter.CreateAsync(
            parquet, [new SourceColumn("customer_id", ColumnKind.Int64, false), new SourceColumn("churned", ColumnKind.Boolean, false)], Ct))
        {
            foreach (var (from, to) in new[] { (0, 125), (125, 250) })
            {
                var ids = Enumerable.Range(from, to - from).Select(i => (long)i).ToArray();
                await writer.WriteAsync(new ColumnBatch(
                [
                    new BatchColumn("customer_id", ColumnKind.Int64, ids),
                    new BatchColumn("churned", ColumnKind.Boolean, ids.Select(id => id >= 200 ? !truth[id] : truth[id]).ToArray()),
                ]), Ct);
            }

            await writer.CompleteAsync(Ct);
        }

        using (var response = await host.Client.PostAsJsonAsync(
            "/api/models/churn/labels", new { input = parquet, keyColumn = "customer_id", labelColumn = "churned" }, ServiceTestHost.Json, Ct))
        {
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            var result = JsonSerializer.Deserialize<LabelIngestResult>(body, ServiceTestHost.Json)!;
            Assert.Equal((250, 250, 0, 0), (result.Rows, result.Inserted, result.Updated, result.Skipped));
        }

        var csv = new StringBuilder("customer_id,churned\n");
        for (var id = 200; id < 320; id++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{id},{(truth[id] ? 1 : 0)}\n");
        }

        csv.Append(",1\n"); // no key: skipped
        var csvPath = Path.Combine(host.WorkDir, "labels.csv");
        await File.WriteAllTextAsync(csvPath, csv.ToString(), Ct);
        var api = host.Client.BaseAddress!.ToString();
        var (exit, output, errors) = await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "churn", "--input", csvPath, "--key-column", "customer_id", "--label-column", "churned", "--json", "--api", api);
        Assert.True(exit == 0, output + errors);
        var csvResult = JsonSerializer.Deserialize<LabelIngestResult>(output, ServiceTestHost.Json)!;
        Assert.Equal((121, 70, 50, 1), (csvResult.Rows, csvResult.Inserted, csvResult.Updated, csvResult.Skipped));

        // The rest from a query on a named source, in a read-only transaction.
        await using (var dw = NpgsqlDataSource.Create(warehouse))
        {
            await using var create = dw.CreateCommand("CREATE TABLE outcomes (customer_id bigint, churned boolean)");
            await create.ExecuteNonQueryAsync(Ct);
            await using var copy = await (await dw.OpenConnectionAsync(Ct)).BeginBinaryImportAsync("COPY outcomes FROM STDIN (FORMAT BINARY)", Ct);
            for (long id = 320; id < 400; id++)
            {
                await copy.WriteRowAsync(Ct, id, truth[id]);
            }

            await copy.CompleteAsync(Ct);
        }

        (exit, output, errors) = await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "churn", "--input-sql", "select customer_id, churned from outcomes where customer_id >= 320",
            "--input-source", "warehouse", "--key-column", "customer_id", "--label-column", "churned", "--api", api);
        Assert.True(exit == 0, output + errors);
        Assert.Contains("80 new labels", output, StringComparison.Ordinal);

        // Every label as the truth says: the CSV replaced the wrong Parquet ones.
        await using (var db = NpgsqlDataSource.Create(host.PostgresConnectionString))
        {
            await using var select = db.CreateCommand("SELECT key, label FROM scoring.labels WHERE model_name = 'churn'");
            await using var reader = await select.ExecuteReaderAsync(Ct);
            var stored = new Dictionary<long, string>();
            while (await reader.ReadAsync(Ct))
            {
                stored[long.Parse(reader.GetString(0), CultureInfo.InvariantCulture)] = reader.GetString(1);
            }

            Assert.Equal(truth.OrderBy(t => t.Key).Select(t => (t.Key, t.Value ? "1" : "0")), stored.OrderBy(s => s.Key).Select(s => (s.Key, s.Value)));
        }

        var reports = (await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/churn/performance?window=1d", ServiceTestHost.Json, Ct))!;
        var report = Assert.Single(reports);
        Assert.Equal((1, PerformanceTasks.Binary, (long)Rows, 400L), (report.Version, report.Task, report.ScoredRows, report.LabelledRows));
        Assert.Equal(400.0 / Rows, report.LabelCoverage!.Value, 12);
        Assert.Equal("score", report.ScoreColumn);
        var expected = Binary(truth.Select(t => (scores[t.Key], t.Value)).ToList());
        AssertMetrics(expected, report.Metrics);
        Assert.Empty(report.Drops);

        // The CLI's report is the same computation, stored again; it compares with the first and finds no drop.
        (exit, output, errors) = await CliProcess.RunAsync(Ct, "performance", "report", "--name", "churn", "--window", "7d", "--json", "--api", api);
        Assert.True(exit == 0, output + errors);
        var cli = Assert.Single(JsonSerializer.Deserialize<List<PerformanceReport>>(output, ServiceTestHost.Json)!);
        AssertMetrics(expected, cli.Metrics);
        Assert.Empty(cli.Drops);
        Assert.NotNull(cli.BaselineReportId);
        (exit, output, _) = await CliProcess.RunAsync(Ct, "performance", "report", "--name", "churn", "--api", api);
        Assert.Equal(0, exit);
        var auc = "rocAuc=" + expected.RocAuc!.Value.ToString("0.####", CultureInfo.InvariantCulture);
        Assert.True(output.Contains(auc, StringComparison.Ordinal), $"no '{auc}' in:\n{output}");

        // The scheduler reports every labelled model on its own.
        for (var wait = 0; ; wait++)
        {
            var stored = (await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/churn/performance/reports?limit=100", ServiceTestHost.Json, Ct))!;
            if (stored.FirstOrDefault(r => r.Trigger == PerformanceReporter.ScheduleTrigger && r.LabelledRows == 400) is { } scheduled)
            {
                AssertMetrics(expected, scheduled.Metrics);
                break;
            }

            Assert.True(wait < 150, "no scheduled report with the labels within 30 s");
            await Task.Delay(200, Ct);
        }
    }

    [Fact]
    public async Task Regression_metrics_match_by_hand_and_a_drop_requests_retraining_once_within_the_cooldown()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "perf-reg", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Performance:MinimumLabelledRows"] = "100",
            ["BatchScoring:Performance:Schedule"] = "0 0 0 1 1 ? 2099", // never: this test reports by hand
        });
        await host.RegisterModelAsync("price", SampleModels.Mlp([Features, 5, 1], seed: 3, featureNames: Names()).Bytes, Ct);
        await RunJobAsync(host, WriteFeatures(host, "features.csv", seed: 2), model: "price");
        var scores = await ScoresAsync(host);
        await using var events = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        events.Accept = e => IsReportOf(host, e);
        await events.ListenToAsync("BatchScoring.Contracts:RetrainingRequested", Ct);

        // The latest metric per version is a gauge on the BatchScoring meter.
        var rmseGauge = new List<double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "BatchScoring" && instrument.Name == "batchscoring.performance.metric")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            var tagged = tags.ToArray().ToDictionary(t => t.Key, t => t.Value as string);
            if (tagged.GetValueOrDefault("model") == "price" && tagged.GetValueOrDefault("metric") == "rmse")
            {
                lock (rmseGauge)
                {
                    rmseGauge.Add(value);
                }
            }
        });
        listener.Start();

        // Good labels: the score plus a little noise.
        var good = await IngestRegressionLabelsAsync(host, scores, noise: 0.02, seed: 1);
        var baseline = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        Assert.Equal(PerformanceTasks.Regression, baseline.Task);
        Assert.Equal(500, baseline.LabelledRows);
        AssertMetrics(Regression(good.Select(g => (scores[g.Key], g.Value)).ToList()), baseline.Metrics);
        Assert.Empty(baseline.Drops);

        // The same keys labelled again, far from the scores: the re-ingest replaces every label and RMSE, MAE, R² drop.
        var bad = await IngestRegressionLabelsAsync(host, scores, noise: 0.3, seed: 2);
        var dropped = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        var expected = Regression(bad.Select(b => (scores[b.Key], b.Value)).ToList());
        AssertMetrics(expected, dropped.Metrics);
        Assert.Equal(baseline.Id, dropped.BaselineReportId);
        Assert.True(dropped.RetrainingRequested);
        Assert.Equal(["mae", "r2", "rmse"], dropped.Drops.Select(d => d.Metric).Order(StringComparer.Ordinal));
        var rmse = dropped.Drops.Single(d => d.Metric == "rmse");
        Assert.Equal(baseline.Metrics.Rmse!.Value, rmse.Baseline);
        Assert.Equal(expected.Rmse!.Value, rmse.Current, 12);
        Assert.Equal((expected.Rmse.Value - baseline.Metrics.Rmse.Value) / baseline.Metrics.Rmse.Value, rmse.Drop, 12);

        lock (rmseGauge)
        {
            Assert.Equal([baseline.Metrics.Rmse.Value, dropped.Metrics.Rmse!.Value], rmseGauge);
        }

        var published = Assert.Single(await events.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct));
        var message = published.Body.GetProperty("message");
        Assert.Equal(dropped.Id.ToString(), message.GetProperty("reportId").GetString());
        Assert.Equal("performance", message.GetProperty("reason").GetString());
        var evidence = message.GetProperty("evidence").EnumerateArray().Single(e => e.GetProperty("metric").GetString() == "rmse");
        Assert.Equal(rmse.Current, evidence.GetProperty("current").GetDouble(), 12);
        Assert.Equal(baseline.Id.ToString(), evidence.GetProperty("baselineReportId").GetString());

        // Still dropped, within the cooldown: stored with its drops, nothing published.
        var again = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        Assert.NotEmpty(again.Drops);
        Assert.False(again.RetrainingRequested);
        await events.ExpectNothingAsync(TimeSpan.FromSeconds(2), Ct);
        var stored = (await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance/reports", ServiceTestHost.Json, Ct))!;
        Assert.Equal([again.Id, dropped.Id, baseline.Id], stored.Select(r => r.Id));
        Assert.Equal([false, true, false], stored.Select(r => r.RetrainingRequested));
    }

    [Fact]
    public async Task A_retraining_request_the_broker_did_not_take_is_requested_again_by_the_next_report()
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(servers, "perf-outage", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri,
            ["BatchScoring:Performance:MinimumLabelledRows"] = "100",
            ["BatchScoring:Performance:Schedule"] = "0 0 0 1 1 ? 2099", // never: this test reports by hand
        });
        await host.RegisterModelAsync("price", SampleModels.Mlp([Features, 5, 1], seed: 3, featureNames: Names()).Bytes, Ct);
        await RunJobAsync(host, WriteFeatures(host, "features.csv", seed: 2), model: "price");
        var scores = await ScoresAsync(host);
        await IngestRegressionLabelsAsync(host, scores, noise: 0.02, seed: 1);
        var baseline = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        Assert.Empty(baseline.Drops);

        // The drop is reported while the broker is down: the report is stored, its request is not published.
        await IngestRegressionLabelsAsync(host, scores, noise: 0.3, seed: 2);
        await broker.StopRabbitMqAsync(Ct);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var unpublished = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the report took {clock.Elapsed} with the broker down");
        Assert.NotEmpty(unpublished.Drops);
        Assert.False(unpublished.RetrainingRequested);

        // Back: the next report with the drop requests retraining (the failed publish gave its claim back).
        await broker.StartRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct);
        await using var events = await RawAmqpClient.ConnectAsync(broker.RabbitMqUri, Ct);
        await events.ListenToAsync("BatchScoring.Contracts:RetrainingRequested", Ct);
        var requested = Assert.Single((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance", ServiceTestHost.Json, Ct))!);
        Assert.NotEmpty(requested.Drops);
        Assert.True(requested.RetrainingRequested);
        var published = Assert.Single(await events.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct));
        Assert.Equal(requested.Id.ToString(), published.Body.GetProperty("message").GetProperty("reportId").GetString());
        var stored = (await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/price/performance/reports", ServiceTestHost.Json, Ct))!;
        Assert.Equal([requested.Id, unpublished.Id, baseline.Id], stored.Select(r => r.Id));
        Assert.Equal([true, false, false], stored.Select(r => r.RetrainingRequested));
    }

    [Fact]
    public async Task Bad_label_input_gets_one_line_errors_and_problem_details()
    {
        var warehouse = await servers.CreateDatabaseAsync("perf-bad-dw", Ct);
        await using var host = await ServiceTestHost.StartAsync(servers, "perf-bad", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Sources:warehouse"] = warehouse,
        });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 3, 1], seed: 1, featureNames: Names()).Bytes, Ct);
        var csv = Path.Combine(host.WorkDir, "labels.csv");
        await File.WriteAllTextAsync(csv, "id,churned\n1,0\n2,1\n", Ct);
        var api = host.Client.BaseAddress!.ToString();

        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/labels", new { input = csv, keyColumn = "customer_id", labelColumn = "churned" }, Ct))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "no column 'customer_id'", "id, churned");
        }

        CliAssert.OneLineError(2, await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "churn", "--input", csv, "--key-column", "customer_id", "--label-column", "churned", "--api", api), "no column 'customer_id'");
        CliAssert.OneLineError(1, await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "nosuch", "--input", csv, "--key-column", "id", "--label-column", "churned", "--api", api), "Model 'nosuch' is not registered");
        using (var response = await host.Client.PostAsJsonAsync("/api/models/nosuch/labels", new { input = csv, keyColumn = "id", labelColumn = "churned" }, Ct))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "Model 'nosuch' is not registered");
        }

        using (var response = await host.Client.PostAsJsonAsync(
            "/api/models/churn/labels", new { inputSql = "select 1 as id, 0 as churned", inputSource = "lake", keyColumn = "id", labelColumn = "churned" }, Ct))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "Source 'lake' is not configured", "warehouse");
        }

        // The query runs read-only: a write is refused, not executed.
        CliAssert.OneLineError(2, await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "churn", "--input-sql", "create table sneaky as select 1 as id, 0 as churned", "--input-source", "warehouse",
            "--key-column", "id", "--label-column", "churned", "--api", api), "read-only transaction");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(
            Ct, "labels", "ingest", "--model", "churn", "--input", csv, "--input-sql", "select 1", "--key-column", "id", "--label-column", "churned", "--api", api));
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, "performance", "report", "--name", "churn", "--window", "soon", "--api", api), "--window");
        using (var response = await host.Client.GetAsync("/api/models/churn/performance?window=soon", Ct))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "window");
        }

        var openApi = await host.Client.GetStringAsync("/openapi/v1.json", Ct);
        Assert.Contains("\"/api/models/{name}/labels\"", openApi, StringComparison.Ordinal);
        Assert.Contains("\"/api/models/{name}/performance\"", openApi, StringComparison.Ordinal);

        // No job has scored anything yet: nothing to report, which is not an error.
        Assert.Empty((await host.Client.GetFromJsonAsync<List<PerformanceReport>>("/api/models/churn/performance", ServiceTestHost.Json, Ct))!);
    }

    /// <summary>Accuracy, precision, recall, F1 at 0.5; ROC AUC by counting every positive–negative pair; log loss by hand.</summary>
    private static PerformanceMetrics Binary(IReadOnlyList<(double Score, bool Positive)> rows)
    {
        long tp = rows.Count(r => r.Positive && r.Score >= 0.5), fp = rows.Count(r => !r.Positive && r.Score >= 0.5);
        long fn = rows.Count(r => r.Positive && r.Score < 0.5), tn = rows.Count(r => !r.Positive && r.Score < 0.5);
        var positives = rows.Where(r => r.Positive).Select(r => r.Score).ToList();
        var negatives = rows.Where(r => !r.Positive).Select(r => r.Score).ToList();
        double wins = 0;
        foreach (var p in positives)
        {
            foreach (var n in negatives)
            {
                wins += p > n ? 1 : p == n ? 0.5 : 0;
            }
        }

        var logLoss = rows.Sum(r =>
        {
            var p = Math.Min(Math.Max(r.Score, 1e-15), 1 - 1e-15);
            return r.Positive ? -Math.Log(p) : -Math.Log(1 - p);
        }) / rows.Count;
        double precision = (double)tp / (tp + fp), recall = (double)tp / (tp + fn);
        Assert.True(positives.Count > 20 && negatives.Count > 20 && tp > 0 && tn > 0, $"a degenerate draw: {tp} {fp} {fn} {tn}");
        return new PerformanceMetrics
        {
            Rows = rows.Count,
            Positives = positives.Count,
            Accuracy = (double)(tp + tn) / rows.Count,
            Precision = precision,
            Recall = recall,
            F1 = 2 * precision * recall / (precision + recall),
            RocAuc = wins / (positives.Count * (double)negatives.Count),
            LogLoss = logLoss,
        };
    }

    /// <summary>RMSE, MAE and R² = 1 − SS_res ÷ SS_tot, from their definitions.</summary>
    private static PerformanceMetrics Regression(IReadOnlyList<(double Prediction, double Label)> rows)
    {
        var mean = rows.Average(r => r.Label);
        var ssRes = rows.Sum(r => (r.Label - r.Prediction) * (r.Label - r.Prediction));
        var ssTot = rows.Sum(r => (r.Label - mean) * (r.Label - mean));
        return new PerformanceMetrics
        {
            Rows = rows.Count,
            Rmse = Math.Sqrt(ssRes / rows.Count),
            Mae = rows.Average(r => Math.Abs(r.Label - r.Prediction)),
            R2 = 1 - (ssRes / ssTot),
        };
    }

    private static void AssertMetrics(PerformanceMetrics expected, PerformanceMetrics actual)
    {
        Assert.Equal(expected.Rows, actual.Rows);
        Assert.Equal(expected.Positives, actual.Positives);
        foreach (var metric in MetricNames.All)
        {
            if (expected.Get(metric) is { } value)
            {
                Assert.True(actual.Get(metric) is { } got && Math.Abs(got - value) <= 1e-9 * Math.Max(1, Math.Abs(value)), $"{metric}: expected {value}, got {actual.Get(metric)}");
            }
            else
            {
                Assert.Null(actual.Get(metric));
            }
        }
    }

    /// <summary>Labels for keys 0–499 (score + N(0, noise)), ingested from a CSV; returns them as the service stored them.</summary>
    private static async Task<Dictionary<long, double>> IngestRegressionLabelsAsync(ServiceTestHost host, IReadOnlyDictionary<long, double> scores, double noise, int seed)
    {
        var random = new Random(seed);
        var labels = new Dictionary<long, double>();
        var csv = new StringBuilder("id,amount\n");
        for (long id = 0; id < 500; id++)
        {
            var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            labels[id] = Math.Round(scores[id] + (noise * normal), 6);
            csv.Append(CultureInfo.InvariantCulture, $"{id},{labels[id].ToString("R", CultureInfo.InvariantCulture)}\n");
        }

        var path = Path.Combine(host.WorkDir, $"amounts-{seed}.csv");
        await File.WriteAllTextAsync(path, csv.ToString(), Ct);
        using var response = await host.Client.PostAsJsonAsync("/api/models/price/labels", new { input = path, keyColumn = "id", labelColumn = "amount" }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return labels;
    }

    private static bool IsReportOf(ServiceTestHost host, RawReply e)
    {
        var reportId = e.Body.GetProperty("message").GetProperty("reportId").GetString();
        using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        using var command = db.CreateCommand("SELECT count(*) FROM scoring.performance_reports WHERE id::text = $1");
        command.Parameters.AddWithValue(reportId ?? "");
        return (long)command.ExecuteScalar()! > 0;
    }

    private static async Task RunJobAsync(ServiceTestHost host, string input, string model = "churn")
    {
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = model,
            Input = input,
            KeyColumn = "id",
            OutputTable = "scoring.results_scored",
            ChunkRows = 200,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(1), Ct)).State);
    }

    /// <summary>The scores the job wrote, by key: what the metrics are computed from (read here, not from the product's report).</summary>
    private static async Task<Dictionary<long, double>> ScoresAsync(ServiceTestHost host)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var select = db.CreateCommand("SELECT id, score FROM scoring.results_scored");
        await using var reader = await select.ExecuteReaderAsync(Ct);
        var scores = new Dictionary<long, double>();
        while (await reader.ReadAsync(Ct))
        {
            scores.Add(reader.GetInt64(0), reader.GetFloat(1));
        }

        return scores;
    }

    private static string[] Names() => Enumerable.Range(0, Features).Select(f => $"f_{f:D3}").ToArray();

    private static string WriteFeatures(ServiceTestHost host, string name, int seed)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("id," + string.Join(',', Names()) + "\n");
        for (var r = 0; r < Rows; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r}");
            for (var f = 0; f < Features; f++)
            {
                csv.Append(',').Append(Math.Round((random.NextDouble() * 6) - 3, 4).ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var path = Path.Combine(host.WorkDir, name);
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
