using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Application.Drift;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Drift;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Drift;

/// <summary>
/// Drift end to end: a reference profile built from a dataset, jobs whose scored rows are sampled by the worker,
/// audits through the API (reports stored, DriftDetected / RetrainingRequested on RabbitMQ, cooldown), and the
/// Quartz-scheduled audit on its clustered PostgreSQL store.
/// </summary>
public sealed class DriftAuditTests(ServerFixture servers)
{
    private const int Features = 6;
    /// <summary>Whether a drift event is about a report of this test's database (other tests publish on the same exchanges).</summary>
    private static bool IsReportOf(ServiceTestHost host, RawReply e)
    {
        var reportId = e.Body.GetProperty("message").GetProperty("reportId").GetString();
        using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        using var command = db.CreateCommand("SELECT count(*) FROM scoring.drift_reports WHERE id::text = $1");
        command.Parameters.AddWithValue(reportId ?? "");
        return (long)command.ExecuteScalar()! > 0;
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_shifted_feature_is_reported_as_drift_with_events_once_per_cooldown_and_unshifted_data_is_not()
    {
        await using var webhook = await WebhookReceiver.StartAsync();
        var secret = WebhookReceiver.NewSecret();
        await using var host = await ServiceTestHost.StartAsync(servers, "drift", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Drift:WebhookUrl"] = new Uri(webhook.Origin, "/drift/").ToString(),
            ["BatchScoring:Drift:WebhookSecret"] = secret,
        });
        var mlp = SampleModels.Mlp([Features, 8, 1], seed: 5, featureNames: Names());
        await host.RegisterModelAsync("churn", mlp.Bytes, Ct);
        await using var events = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        events.Accept = e => IsReportOf(host, e);
        await events.ListenToAsync("BatchScoring.Contracts:DriftDetected", Ct);
        await events.ListenToAsync("BatchScoring.Contracts:RetrainingRequested", Ct);

        // Reference: 5,000 rows of N(0, 1) features; the profile holds them all (under the reservoir size), so its
        // deciles are exactly the type-7 percentiles of the data.
        var reference = WriteCsv(host, "reference.csv", 5_000, seed: 1, shift: 0);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = reference.Path, keyColumn = "id" }, ServiceTestHost.Json, Ct))
        {
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        }

        var profile = (await host.Client.GetFromJsonAsync<ModelProfile>("/api/models/churn/profile", ServiceTestHost.Json, Ct))!;
        Assert.Equal(5_000, profile.Rows);
        Assert.Equal(Names(), profile.Features.Select(f => f.Name));
        Assert.Equal(["score"], profile.Predictions.Select(p => p.Name));
        var sorted = reference.Columns[0].Order().ToArray();
        Assert.Equal(9, profile.Features[0].Edges.Length);
        for (var d = 1; d <= 9; d++)
        {
            Assert.Equal(Type7Percentile(sorted, d / 10.0), profile.Features[0].Edges[d - 1], 1e-5);
        }

        // No samples yet: "insufficient data", its own verdict, stored, without events; the CLI exits 4.
        var empty = await AuditAsync(host);
        Assert.Equal(DriftVerdicts.InsufficientData, empty.Verdict);
        Assert.False(empty.Drifted || empty.EventsPublished || empty.RetrainingRequested);
        Assert.Equal(0, empty.Rows);
        Assert.All(empty.Columns, c => Assert.Contains("too few rows", c.Reason, StringComparison.Ordinal));
        var (emptyExit, emptyOutput, emptyErrors) = await CliProcess.RunAsync(Ct, "drift", "audit", "--name", "churn", "--api", host.Client.BaseAddress!.ToString());
        Assert.True(emptyExit == 4, emptyOutput + emptyErrors);
        Assert.Contains("insufficient data", emptyOutput, StringComparison.Ordinal);
        var (_, listed, _) = await CliProcess.RunAsync(Ct, "drift", "reports", "--name", "churn", "--api", host.Client.BaseAddress!.ToString());
        Assert.Contains("insufficient data", listed, StringComparison.Ordinal);

        // Same distribution, other draws: scored by a job, sampled per chunk, audited — no drift.
        await RunJobAsync(host, WriteCsv(host, "same.csv", 4_000, seed: 2, shift: 0).Path, expectedSamples: 4);
        var same = await AuditAsync(host);
        Assert.Equal(4 * 256, same.Rows);
        Assert.False(same.Drifted, string.Join("; ", same.Columns.Select(c => $"{c.Name} {c.Reason}")));
        Assert.Equal(DriftVerdicts.NoDrift, same.Verdict);
        Assert.All(same.Columns, c => Assert.True(c.Psi < 0.1, $"{c.Name}: PSI {c.Psi}"));

        // f_000 shifted by 2 sd in a larger job (2/3 of the window): drift on f_000, not on untouched features.
        await RunJobAsync(host, WriteCsv(host, "shifted.csv", 8_000, seed: 3, shift: 2).Path, expectedSamples: 4 + 8);
        var shifted = await AuditAsync(host);
        Assert.True(shifted.Drifted);
        Assert.True(shifted.EventsPublished);
        var f0 = Assert.Single(shifted.Columns, c => c.Name == "f_000");
        Assert.True(f0.Drifted);
        Assert.True(f0.Psi >= 0.2, $"PSI {f0.Psi}");
        Assert.Contains("PSI", f0.Reason, StringComparison.Ordinal);
        Assert.True(f0.KsPValue < 1e-6, $"KS p {f0.KsPValue}");
        Assert.All(shifted.Columns.Where(c => c.Name is "f_003" or "f_004" or "f_005"), c => Assert.False(c.Drifted, $"{c.Name}: {c.Reason}"));

        var published = await events.ReceiveAsync(2, TimeSpan.FromSeconds(20), Ct);
        var types = published.Select(e => e.Body.GetProperty("messageType")[0].GetString()).Order().ToArray();
        Assert.Equal(["urn:message:BatchScoring.Contracts:DriftDetected", "urn:message:BatchScoring.Contracts:RetrainingRequested"], types);
        Assert.All(published, e =>
        {
            var message = e.Body.GetProperty("message");
            Assert.Equal(shifted.Id.ToString(), message.GetProperty("reportId").GetString());
            Assert.Equal("churn", message.GetProperty("model").GetString());
            Assert.True(message.GetProperty("psi").GetProperty("f_000").GetDouble() >= 0.2);
            Assert.Contains("PSI", message.GetProperty("driftedColumns").GetProperty("f_000").GetString(), StringComparison.Ordinal);
        });

        var hook = await webhook.NextAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("/drift/", hook.PathAndQuery);
        Assert.Equal(shifted.Id.ToString(), hook.Json.GetProperty("reportId").GetString());
        Assert.Equal(shifted.Id.ToString(), hook.Id);
        Assert.True(hook.IsSignedWith(secret), $"webhook-signature {hook.Signature}");

        // The CLI: exit code 3 when the audit finds drift. Within the cooldown: the report is stored, no second pair of events.
        var (exit, output, errors) = await CliProcess.RunAsync(Ct, "drift", "audit", "--name", "churn", "--api", host.Client.BaseAddress!.ToString());
        Assert.True(exit == DriftCommandExitDrift, output + errors);
        Assert.Contains("f_000", output, StringComparison.Ordinal);
        var again = await AuditAsync(host);
        Assert.True(again.Drifted);
        Assert.False(again.EventsPublished);
        await events.ExpectNothingAsync(TimeSpan.FromSeconds(2), Ct);

        var metrics = await host.Client.GetStringAsync("/metrics", Ct);
        var drifted = metrics.Split('\n').Single(l => l.StartsWith("batchscoring_drift_columns_drifted{model=\"churn\",version=\"1\"}", StringComparison.Ordinal));
        Assert.Equal(again.Columns.Count(c => c.Drifted), double.Parse(drifted.Split(' ')[1], CultureInfo.InvariantCulture));

        var reports = (await host.Client.GetFromJsonAsync<List<DriftReport>>("/api/models/churn/drift", ServiceTestHost.Json, Ct))!;
        Assert.Equal(6, reports.Count);
        Assert.Equal([again.Id], reports.Take(1).Select(r => r.Id));
        Assert.Equal([shifted.Id, same.Id], reports.Skip(2).Take(2).Select(r => r.Id));
        Assert.Equal([DriftVerdicts.InsufficientData, DriftVerdicts.InsufficientData], reports.Skip(4).Select(r => r.Verdict)); // the API's and the CLI's
        Assert.Equal(DriftVerdicts.Drift, shifted.Verdict);
        Assert.True(reports[1].Drifted && !reports[1].EventsPublished); // the CLI's audit, within the cooldown
        Assert.Null(webhook.TryNext());
        Assert.All(reports, r => Assert.Equal(DriftAuditor.ManualTrigger, r.Trigger));
    }

    [Fact]
    public async Task Retraining_waits_for_consecutive_drifted_audits_while_drift_is_announced_on_the_first()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-hyst", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Drift:RetrainAfterDriftedAudits"] = "2",
        });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        await using var events = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        events.Accept = e => IsReportOf(host, e);
        await events.ListenToAsync("BatchScoring.Contracts:DriftDetected", Ct);
        await events.ListenToAsync("BatchScoring.Contracts:RetrainingRequested", Ct);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = WriteCsv(host, "ref.csv", 2_000, 1, 0).Path, keyColumn = "id" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        await RunJobAsync(host, WriteCsv(host, "shifted.csv", 2_000, seed: 3, shift: 3).Path, expectedSamples: 2);

        static string TypeOf(RawReply e) => e.Body.GetProperty("messageType")[0].GetString()!;
        var first = await AuditAsync(host, "churn");
        Assert.True(first.Drifted && first.EventsPublished && !first.RetrainingRequested);
        Assert.Equal("urn:message:BatchScoring.Contracts:DriftDetected", TypeOf(Assert.Single(await events.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct))));
        await events.ExpectNothingAsync(TimeSpan.FromSeconds(1), Ct);

        // A quiet window in between (the samples moved out of it): insufficient data, which neither counts as a
        // drifted audit nor breaks the streak — twice, which would otherwise have reached the retrain threshold.
        await using (var db = NpgsqlDataSource.Create(host.PostgresConnectionString))
        {
            await using var away = db.CreateCommand("UPDATE scoring.drift_samples SET sampled_at = sampled_at - interval '30 days'");
            await away.ExecuteNonQueryAsync(Ct);
            for (var quiet = 0; quiet < 2; quiet++)
            {
                var insufficient = await AuditAsync(host, "churn");
                Assert.Equal(DriftVerdicts.InsufficientData, insufficient.Verdict);
                Assert.False(insufficient.Drifted || insufficient.EventsPublished || insufficient.RetrainingRequested);
            }

            await using var back = db.CreateCommand("UPDATE scoring.drift_samples SET sampled_at = sampled_at + interval '30 days'");
            await back.ExecuteNonQueryAsync(Ct);
        }

        var second = await AuditAsync(host, "churn");
        Assert.True(second.Drifted && !second.EventsPublished && second.RetrainingRequested);
        var retrain = Assert.Single(await events.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct));
        Assert.Equal("urn:message:BatchScoring.Contracts:RetrainingRequested", TypeOf(retrain));
        Assert.Equal(second.Id.ToString(), retrain.Body.GetProperty("message").GetProperty("reportId").GetString());

        var third = await AuditAsync(host, "churn");
        Assert.True(third.Drifted && !third.EventsPublished && !third.RetrainingRequested);

        // A one-hour window: the same samples (they are seconds old), a window that starts an hour back.
        using var hour = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { windowHours = 1 }, Ct);
        var lastHour = System.Text.Json.JsonSerializer.Deserialize<DriftReport>(await hour.Content.ReadAsStringAsync(Ct), ServiceTestHost.Json)!;
        Assert.Equal(TimeSpan.FromHours(1), lastHour.WindowEnd - lastHour.WindowStart);
        Assert.Equal(third.Rows, lastHour.Rows);
        await events.ExpectNothingAsync(TimeSpan.FromSeconds(2), Ct);
    }

    [Fact]
    public async Task Drift_found_while_the_broker_is_down_is_announced_by_the_next_drifted_audit()
    {
        await using var broker = await PrivateServers.CreateAsync(Ct);
        await broker.StartRabbitMqAsync(Ct);
        await using var host = await ServiceTestHost.StartAsync(servers, "driftoutage", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["ConnectionStrings:RabbitMq"] = broker.RabbitMqUri,
        });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 8, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        var reference = WriteCsv(host, "reference.csv", 5_000, seed: 1, shift: 0);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = reference.Path, keyColumn = "id" }, ServiceTestHost.Json, Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        }

        await RunJobAsync(host, WriteCsv(host, "shifted.csv", 8_000, seed: 3, shift: 2).Path, expectedSamples: 8);

        // Drift found with the broker down: the report is stored and answered, its events are not published.
        await broker.StopRabbitMqAsync(Ct);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var unannounced = await AuditAsync(host);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the audit took {clock.Elapsed} with the broker down");
        Assert.True(unannounced.Drifted);
        Assert.False(unannounced.EventsPublished);

        // Back: the next drifted audit is not held by a cooldown that nothing started; it announces the drift.
        await broker.StartRabbitMqAsync(Ct);
        await host.WaitForReadinessAsync(HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct);
        await using var events = await RawAmqpClient.ConnectAsync(broker.RabbitMqUri, Ct);
        events.Accept = e => IsReportOf(host, e);
        await events.ListenToAsync("BatchScoring.Contracts:DriftDetected", Ct);
        var announced = await AuditAsync(host);
        Assert.True(announced.Drifted);
        Assert.True(announced.EventsPublished);
        var published = Assert.Single(await events.ReceiveAsync(1, TimeSpan.FromSeconds(20), Ct));
        Assert.Equal(announced.Id.ToString(), published.Body.GetProperty("message").GetProperty("reportId").GetString());
    }

    [Fact]
    public async Task Scoring_the_reference_file_in_its_periodic_row_order_is_not_drift()
    {
        // Rows exported round-robin over 32 stores; f_000 depends on the store (the row's position mod 32). The file
        // is profiled, then scored as it is in 8,192-row batches: a sample of evenly spaced rows of each batch would
        // see one store only (PSI ≈ 3.5 on f_000, RetrainingRequested); a random sample of each chunk sees them all.
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-periodic", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        var random = new Random(31);
        var csv = new StringBuilder("id," + string.Join(',', Names()) + "\n");
        const int rows = 65_536;
        for (var r = 0; r < rows; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r}");
            for (var f = 0; f < Features; f++)
            {
                var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                csv.Append(',').Append(Math.Round(normal + (f == 0 ? (r % 32) * 0.25 : 0), 5).ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var file = Path.Combine(host.WorkDir, "stores.csv");
        await File.WriteAllTextAsync(file, csv.ToString(), Ct);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = file, keyColumn = "id" }, Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        }

        var (submit, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "churn", Input = file, KeyColumn = "id", OutputTable = "scoring.results_stores", ChunkRows = 16_384, BatchRows = 8_192 }, Ct);
        Assert.True(submit.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(2), Ct)).State);
        await WaitForSamplesAsync(host, 4);

        var report = await AuditAsync(host);
        Assert.Equal(4 * 256, report.Rows);
        var f0 = Assert.Single(report.Columns, c => c.Name == "f_000");
        Assert.True(report.Verdict == DriftVerdicts.NoDrift, string.Join("; ", report.Columns.Where(c => c.Drifted).Select(c => $"{c.Name}: {c.Reason}")));
        Assert.True(f0.Psi < 0.1 && f0.KsStatistic < 0.1, $"f_000: PSI {f0.Psi}, KS D {f0.KsStatistic}");
        Assert.False(report.EventsPublished || report.RetrainingRequested);
    }

    [Fact]
    public async Task A_small_shift_is_caught_by_the_ks_rule_at_a_bonferroni_corrected_level()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-ks", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = WriteCsv(host, "ref.csv", 3_000, 1, 0).Path, keyColumn = "id" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        // f_000 moved by 0.35 sd: PSI ≈ 0.12 stays under 0.2, the KS distance ≈ 0.14 is above 0.1 (the samples are
        // random: 2,048 rows keep both about 3 standard errors from their thresholds).
        await RunJobAsync(host, WriteCsv(host, "nudged.csv", 8_000, seed: 3, shift: 0.35).Path, expectedSamples: 8);
        var report = await AuditAsync(host);
        var f0 = Assert.Single(report.Columns, c => c.Name == "f_000");
        Assert.True(f0.Psi < 0.2, $"PSI {f0.Psi}");
        Assert.True(f0.Drifted, f0.Reason);
        var threshold = (0.01 / (Features + 1)).ToString("G3", CultureInfo.InvariantCulture); // 6 features + score
        Assert.StartsWith("KS D ", f0.Reason, StringComparison.Ordinal);
        Assert.EndsWith($"< {threshold}", f0.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audits_without_a_profile_or_model_are_refused_with_the_reason()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-bad", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);

        using var noProfile = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, noProfile.StatusCode);
        Assert.Contains("has no reference profile", await noProfile.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        using var badWindow = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { windowHours = 0 }, Ct);
        Assert.Contains("windowHours must be between 1", await badWindow.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        using var noModel = await host.Client.PostAsJsonAsync("/api/models/nope/drift/audit", new { }, Ct);
        Assert.Contains("Model 'nope' is not registered", await noModel.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        using var missingFile = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = Path.Combine(host.WorkDir, "missing.csv") }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missingFile.StatusCode);
        Assert.Contains("missing.csv", await missingFile.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_scheduler_role_audits_profiled_models_on_its_quartz_schedule()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-cron", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Drift:Schedule"] = "0/2 * * * * ?",
        });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = WriteCsv(host, "ref.csv", 2_000, 1, 0).Path, keyColumn = "id" }, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        await RunJobAsync(host, WriteCsv(host, "shifted.csv", 2_000, seed: 3, shift: 3).Path, expectedSamples: 2);

        List<DriftReport> reports = [];
        for (var wait = 0; wait < 100 && !reports.Any(r => r.Trigger == DriftAuditor.ScheduleTrigger && r.Rows > 0); wait++)
        {
            await Task.Delay(200, Ct);
            reports = (await host.Client.GetFromJsonAsync<List<DriftReport>>("/api/models/churn/drift", ServiceTestHost.Json, Ct))!;
        }

        var scheduled = Assert.Single(reports.Where(r => r.Trigger == DriftAuditor.ScheduleTrigger && r.Rows > 0).Take(1));
        Assert.True(scheduled.Drifted);
        Assert.Equal(2 * 256, scheduled.Rows);
        Assert.StartsWith("drift-audit-schedule@", scheduled.FireId, StringComparison.Ordinal);

        // Quartz keeps its job and trigger in PostgreSQL (clustered store), created at start-up.
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var triggers = db.CreateCommand("SELECT count(*) FROM qrtz_cron_triggers WHERE cron_expression = '0/2 * * * * ?'");
        Assert.Equal(1L, await triggers.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task Request_mode_samples_keep_each_rows_features_with_its_own_prediction()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-req", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Drift:RequestSampleIntervalSeconds"] = "0",
            ["BatchScoring:Drift:SampleRows"] = "7",
            ["BatchScoring:Requests:MaxQueueDelayMs"] = "20",
        });
        var mlp = SampleModels.Mlp([Features, 8, 1], seed: 9, featureNames: Names());
        await host.RegisterModelAsync("churn", mlp.Bytes, Ct);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-requests";
        var random = new Random(4);
        for (var i = 0; i < 6; i++)
        {
            // Every request has a poison row (NaN as a string the model cannot take), so scored rows are not batch rows 1:1.
            var rows = Enumerable.Range(0, 10).Select(r => new
            {
                key = $"{i}-{r}",
                features = Names().ToDictionary(n => n, n => (object)(r == 3 && n == "f_002" ? "NaN" : Math.Round(random.NextDouble(), 4))),
            });
            await client.PublishAsync(queue, System.Text.Json.JsonSerializer.Serialize(new { requestId = $"r{i}", model = new { name = "churn" }, rows, replyTo = client.ReplyQueue }), Ct);
        }

        Assert.All(await client.ReceiveAsync(6, TimeSpan.FromSeconds(20), Ct), r => Assert.Equal("partially_scored", r.Body.GetProperty("outcome").GetString()));
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        var checkedRows = 0;
        for (var wait = 0; checkedRows == 0 && wait < 50; wait++)
        {
            await Task.Delay(100, Ct);
            await using var select = db.CreateCommand("SELECT row_count, columns::text FROM scoring.drift_samples WHERE model_name = 'churn' AND source = 'request'");
            await using var reader = await select.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                using var sample = System.Text.Json.JsonDocument.Parse(reader.GetString(1));
                var columns = sample.RootElement;
                Assert.Equal(Names().Append("score"), columns.EnumerateObject().Select(p => p.Name));
                Assert.InRange(reader.GetInt32(0), 1, 7);
                for (var row = 0; row < reader.GetInt32(0); row++)
                {
                    var x = Names().Select(n => (float)columns.GetProperty(n)[row].GetDouble()).ToArray();
                    Assert.Equal(MlpReference.Forward(mlp, x)[0], (float)columns.GetProperty("score")[row].GetDouble(), 1e-5f);
                    checkedRows++;
                }
            }
        }

        Assert.True(checkedRows > 0, "no request-mode drift sample was written");
    }

    [Fact]
    public async Task A_text_feature_whose_category_mix_changes_drifts_by_chi_square_while_numeric_features_hold()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-cat", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Drift:RequestSampleIntervalSeconds"] = "0",
            ["BatchScoring:Drift:SampleRows"] = "1000", // every scored row, whatever the batches
            ["BatchScoring:Requests:MaxQueueDelayMs"] = "20",
        });
        await host.RegisterModelAsync("tenure", SampleModels.PerColumnModel(seed: 11).Bytes, Ct);
        string[] contracts = ["month-to-month", "one_year", "two_year"];

        // Reference: contracts 50/30/20.
        var random = new Random(5);
        var csv = new StringBuilder("id,tenure,monthly_charges,num_services,contract\n");
        for (var r = 0; r < 3_000; r++)
        {
            var kind = contracts[r % 10 < 5 ? 0 : r % 10 < 8 ? 1 : 2];
            csv.Append(CultureInfo.InvariantCulture, $"{r},{random.Next(1, 72)},{Math.Round(20 + (random.NextDouble() * 80), 2)},{random.Next(0, 8)},{kind}\n");
        }

        var reference = Path.Combine(host.WorkDir, "reference.csv");
        await File.WriteAllTextAsync(reference, csv.ToString(), Ct);
        using (var response = await host.Client.PostAsJsonAsync("/api/models/tenure/profile", new { input = reference, keyColumn = "id" }, Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        }

        // Today, through request mode: the same numbers, contracts 10/20/70.
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-requests";
        for (var i = 0; i < 40; i++)
        {
            var rows = Enumerable.Range(0, 10).Select(r => new
            {
                key = $"{i}-{r}",
                features = new Dictionary<string, object>
                {
                    ["tenure"] = random.Next(1, 72), ["monthly_charges"] = Math.Round(20 + (random.NextDouble() * 80), 2), ["num_services"] = random.Next(0, 8),
                    ["contract"] = contracts[r < 1 ? 0 : r < 3 ? 1 : 2],
                },
            });
            await client.PublishAsync(queue, System.Text.Json.JsonSerializer.Serialize(new { requestId = $"r{i}", model = new { name = "tenure" }, rows, replyTo = client.ReplyQueue }), Ct);
        }

        Assert.All(await client.ReceiveAsync(40, TimeSpan.FromSeconds(30), Ct), r => Assert.Equal("scored", r.Body.GetProperty("outcome").GetString()));
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await Poll.UntilAsync(
            async () =>
            {
                await using var count = db.CreateCommand("SELECT coalesce(sum(row_count), 0) FROM scoring.drift_samples WHERE model_name = 'tenure'");
                return (long)(await count.ExecuteScalarAsync(Ct))! >= 400;
            },
            TimeSpan.FromSeconds(10), "request-mode samples written", Ct);

        using var audit = await host.Client.PostAsJsonAsync("/api/models/tenure/drift/audit", new { }, Ct);
        var report = System.Text.Json.JsonSerializer.Deserialize<DriftReport>(await audit.Content.ReadAsStringAsync(Ct), ServiceTestHost.Json)!;
        var contract = Assert.Single(report.Columns, c => c.Name == "contract");
        Assert.Equal(ProfileColumnKind.Categorical, contract.Kind);
        Assert.Equal(400, contract.Rows);
        Assert.True(contract.Drifted, contract.Reason);
        Assert.True(contract.ChiSquarePValue < 1e-6, $"chi-square p {contract.ChiSquarePValue}");
        Assert.Null(contract.KsStatistic);
        Assert.All(report.Columns.Where(c => c.Name is "tenure" or "monthly_charges" or "num_services"), c => Assert.False(c.Drifted, $"{c.Name}: {c.Reason}"));
    }

    private const int DriftCommandExitDrift = 3;

    private static async Task<DriftReport> AuditAsync(ServiceTestHost host, string model = "churn")
    {
        using var response = await host.Client.PostAsJsonAsync($"/api/models/{model}/drift/audit", new { }, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, body);
        return System.Text.Json.JsonSerializer.Deserialize<DriftReport>(body, ServiceTestHost.Json)!;
    }

    /// <summary>Scores a CSV through a job (1,000-row chunks) and waits until the worker's samples are written.</summary>
    private static async Task RunJobAsync(ServiceTestHost host, string input, int expectedSamples)
    {
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn",
            Input = input,
            KeyColumn = "id",
            OutputTable = "scoring.results_churn",
            ChunkRows = 1_000,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(1), Ct)).State);

        await WaitForSamplesAsync(host, expectedSamples);
    }

    private static async Task WaitForSamplesAsync(ServiceTestHost host, int expectedSamples)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        for (var wait = 0; ; wait++)
        {
            await using var count = db.CreateCommand("SELECT count(*) FROM scoring.drift_samples WHERE model_name = 'churn' AND source = 'job'");
            var samples = (long)(await count.ExecuteScalarAsync(Ct))!;
            if (samples >= expectedSamples)
            {
                Assert.Equal(expectedSamples, samples);
                return;
            }

            Assert.True(wait < 100, $"{samples} of {expectedSamples} drift samples written");
            await Task.Delay(100, Ct);
        }
    }

    private static string[] Names() => Enumerable.Range(0, Features).Select(f => $"f_{f:D3}").ToArray();

    /// <summary>A CSV of id + N(0, 1) features (f_000 moved by <paramref name="shift"/>); returns its path and feature values.</summary>
    private static (string Path, double[][] Columns) WriteCsv(ServiceTestHost host, string name, int rows, int seed, double shift)
    {
        var random = new Random(seed);
        var columns = Enumerable.Range(0, Features).Select(_ => new double[rows]).ToArray();
        var csv = new StringBuilder("id," + string.Join(',', Names()) + "\n");
        for (var r = 0; r < rows; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r}");
            for (var f = 0; f < Features; f++)
            {
                // Box–Muller, rounded to what the CSV carries so the test compares the same numbers the service reads.
                var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                var value = Math.Round(normal + (f == 0 ? shift : 0), 5);
                columns[f][r] = value;
                csv.Append(',').Append(value.ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var path = System.IO.Path.Combine(host.WorkDir, name);
        File.WriteAllText(path, csv.ToString());
        return (path, columns);
    }

    private static double Type7Percentile(double[] sorted, double p)
    {
        var h = (sorted.Length - 1) * p;
        var low = (int)Math.Floor(h);
        return low + 1 < sorted.Length ? sorted[low] + ((h - low) * (sorted[low + 1] - sorted[low])) : sorted[low];
    }
}
