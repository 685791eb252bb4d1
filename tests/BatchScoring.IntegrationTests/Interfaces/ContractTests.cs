using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary>
/// What users see, checked against schemas/: HTTP answers (successes and problems), `--json` outputs of the CLI, and
/// the messages on RabbitMQ as a non-.NET consumer receives them (raw bytes, no MassTransit).
/// </summary>
public sealed class ContractTests(ServerFixture servers)
{
    private const int Features = 6;
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(30);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Jobs_models_and_problems_from_the_api_the_cli_and_the_bus_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-job", ServiceRoles.All, Ct);
        var api = host.Client.BaseAddress!.ToString();
        var ours = new ConcurrentDictionary<string, bool>();
        await using var events = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        events.Accept = e => e.Body.TryGetProperty("message", out var m) && m.TryGetProperty("jobId", out var id) && ours.ContainsKey(id.GetString()!);
        await events.ListenToAsync("BatchScoring.Contracts:ScoringJobCompleted", Ct);
        await events.ListenToAsync("BatchScoring.Contracts:ScoringJobFailed", Ct);
        await events.ListenToAsync(host.Settings["BatchScoring:QueuePrefix"] + "score-chunks", Ct);

        // Models: the CLI's registration, the API's lists.
        var onnx = Path.Combine(host.WorkDir, "churn.onnx");
        await File.WriteAllBytesAsync(onnx, SampleModels.Mlp([Features, 8, 1], seed: 4, featureNames: Names()).Bytes, Ct);
        SchemaAssert.Valid("model-version.schema.json", await CliJsonAsync(0, "models", "register", "--name", "churn", "--file", onnx, "--json", "--api", api), "models register --json");
        SchemaAssert.EachValid("model-version.schema.json", await host.Client.GetStringAsync("/api/models", Ct), "GET /api/models");
        SchemaAssert.EachValid("model-version.schema.json", await host.Client.GetStringAsync("/api/models/churn/versions", Ct), "GET /api/models/churn/versions");
        SchemaAssert.EachValid("model-version.schema.json", await CliJsonAsync(0, "models", "list", "--json", "--api", api), "models list --json");
        SchemaAssert.Valid("model-version.schema.json", await CliJsonAsync(0, "models", "alias", "--name", "churn", "--alias", "production", "--version", "1", "--json", "--api", api), "models alias --json");
        SchemaAssert.EachValid("model-alias-change.schema.json", await host.Client.GetStringAsync("/api/models/churn/aliases/production/history", Ct), "GET …/aliases/production/history");
        SchemaAssert.EachValid("model-alias-change.schema.json", await CliJsonAsync(0, "models", "history", "--name", "churn", "--alias", "production", "--json", "--api", api), "models history --json");

        // One job that succeeds with failed rows (failureSummary filled) and one that fails (error filled).
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = Features, RowGroupRows = 1_000, NaNEvery = 500 }, Ct);
        var submitted = new List<Guid>();
        foreach (var (table, maxFailed) in new[] { ("scoring.contract_ok", (long?)null), ("scoring.contract_failed", 0L) })
        {
            var request = new SubmitScoringJob
            {
                Model = "churn", Input = input, KeyColumn = "customer_id", OutputTable = table, ChunkRows = 1_000, MaxFailedRows = maxFailed,
                MaxFailedPercent = maxFailed is null ? 50 : null,
            };
            var body = JsonSerializer.Serialize(request, ServiceTestHost.Json);
            SchemaAssert.Valid("submit-scoring-job.schema.json", body, "the job request");
            using var response = await host.Client.PostAsync("/api/jobs", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
            var answer = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, answer);
            SchemaAssert.Valid("job-status.schema.json", answer, "POST /api/jobs");
            var id = JsonDocument.Parse(answer).RootElement.GetProperty("id").GetGuid();
            ours[id.ToString()] = true;
            submitted.Add(id);
        }

        Assert.Equal("succeeded", (await host.WaitForEndAsync(submitted[0], TimeSpan.FromMinutes(2), Ct)).State);
        Assert.Equal("failed", (await host.WaitForEndAsync(submitted[1], TimeSpan.FromMinutes(2), Ct)).State);
        foreach (var id in submitted)
        {
            SchemaAssert.Valid("job-status.schema.json", await host.Client.GetStringAsync($"/api/jobs/{id}", Ct), $"GET /api/jobs/{id}");
            SchemaAssert.Valid("job-status.schema.json", await CliJsonAsync(null, "jobs", "status", id.ToString(), "--json", "--api", api), "jobs status --json");
        }

        SchemaAssert.EachValid("job-status.schema.json", await host.Client.GetStringAsync("/api/jobs", Ct), "GET /api/jobs");
        SchemaAssert.EachValid("job-status.schema.json", await CliJsonAsync(0, "jobs", "list", "--json", "--api", api), "jobs list --json");

        // Events as a consumer in another language gets them: one per job, and the chunk claim checks.
        var received = await events.ReceiveAsync(2 + 6, EventTimeout, Ct);
        var byType = received.GroupBy(e => e.Body.GetProperty("messageType")[0].GetString()!).ToDictionary(g => g.Key, g => g.ToList());
        SchemaAssert.ValidEnvelope("scoring-job-completed.schema.json", Assert.Single(byType["urn:message:BatchScoring.Contracts:ScoringJobCompleted"]).Body, "ScoringJobCompleted");
        SchemaAssert.ValidEnvelope("scoring-job-failed.schema.json", Assert.Single(byType["urn:message:BatchScoring.Contracts:ScoringJobFailed"]).Body, "ScoringJobFailed");
        var chunks = byType["urn:message:BatchScoring.Contracts:ScoreChunk"];
        Assert.Equal(6, chunks.Count);
        Assert.All(chunks, c => SchemaAssert.ValidEnvelope("score-chunk.schema.json", c.Body, "ScoreChunk"));

        // Schedules: created, listed and fired through the CLI, read back through the API.
        SchemaAssert.Valid("schedule.schema.json", await CliJsonAsync(0, "schedules", "create", "--name", "contract-nightly", "--cron", "0 2 * * *", "--model", "churn@production",
            "--input", input, "--key-column", "customer_id", "--output-table", "scoring.contract_sched", "--json", "--api", api), "schedules create --json");
        SchemaAssert.EachValid("schedule.schema.json", await CliJsonAsync(0, "schedules", "list", "--json", "--api", api), "schedules list --json");
        SchemaAssert.Valid("schedule-run.schema.json", await CliJsonAsync(0, "schedules", "run-now", "--name", "contract-nightly", "--json", "--api", api), "schedules run-now --json");
        SchemaAssert.Valid("schedule.schema.json", await host.Client.GetStringAsync("/api/schedules/contract-nightly", Ct), "GET /api/schedules/contract-nightly");
        SchemaAssert.EachValid("schedule-run.schema.json", await host.Client.GetStringAsync("/api/schedules/contract-nightly/runs", Ct), "GET /api/schedules/contract-nightly/runs");
        SchemaAssert.EachValid("schedule-run.schema.json", await CliJsonAsync(0, "schedules", "runs", "--name", "contract-nightly", "--json", "--api", api), "schedules runs --json");

        // Problems: every error answer has the documented shape.
        await AssertProblemAsync(host, HttpMethod.Get, $"/api/jobs/{Guid.NewGuid()}", null, HttpStatusCode.NotFound);
        await AssertProblemAsync(host, HttpMethod.Get, "/api/jobs?state=bogus", null, HttpStatusCode.BadRequest);
        await AssertProblemAsync(host, HttpMethod.Get, "/api/nothing-here", null, HttpStatusCode.NotFound);
        await AssertProblemAsync(host, HttpMethod.Delete, "/api/jobs", null, HttpStatusCode.MethodNotAllowed);
        await AssertProblemAsync(host, HttpMethod.Post, "/api/jobs", """{"model":"churn","input":"x","keyColumn":"id","outputTable":"t","chunkRows":0}""", HttpStatusCode.BadRequest, errors: true);
        await AssertProblemAsync(host, HttpMethod.Post, "/api/jobs", """{"model":"churn","chunkSize":5}""", HttpStatusCode.BadRequest, errors: true);
        await AssertProblemAsync(host, HttpMethod.Get, "/api/models/nobody/versions", null, HttpStatusCode.NotFound);
        var idempotent = """{"model":"churn","input":"@input","keyColumn":"customer_id","outputTable":"scoring.contract_idem","idempotencyKey":"contract-1"}""".Replace("@input", input, StringComparison.Ordinal);
        using (var first = await host.Client.PostAsync("/api/jobs", new StringContent(idempotent, Encoding.UTF8, "application/json"), Ct))
        {
            Assert.True(first.IsSuccessStatusCode, await first.Content.ReadAsStringAsync(Ct));
        }

        await AssertProblemAsync(host, HttpMethod.Post, "/api/jobs", idempotent.Replace("contract_idem", "contract_other", StringComparison.Ordinal), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Score_request_answers_and_events_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-req", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 8, 1], seed: 4, featureNames: Names()).Bytes, Ct);
        var prefix = "contract-" + Guid.NewGuid().ToString("N")[..8] + "-";
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        client.Accept = e => (e.Body.TryGetProperty("message", out var m) ? m : e.Body).GetProperty("requestId").GetString()!.StartsWith(prefix, StringComparison.Ordinal);
        await client.ListenToAsync("BatchScoring.Contracts:ScoreRequestCompleted", Ct);
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-requests";

        // A numeric model version, as the schema allows; and a request for an unknown model (rejected: error set, no scores).
        var scored = JsonSerializer.Serialize(new
        {
            requestId = prefix + "scored",
            model = new { name = "churn", version = 1 },
            rows = new[] { new { key = "c-1", features = Names().ToDictionary(n => n, n => 0.25) }, new { key = "c-2", features = Names().ToDictionary(n => n, n => -1.5) } },
            replyTo = client.ReplyQueue,
            correlationId = "order-1",
        });
        var rejected = JsonSerializer.Serialize(new
        {
            requestId = prefix + "rejected",
            model = new { name = "nobody" },
            rows = new[] { new { key = 7, features = new Dictionary<string, double> { ["f_000"] = 1 } } },
            replyTo = client.ReplyQueue,
        });
        foreach (var request in new[] { scored, rejected })
        {
            SchemaAssert.Valid("score-request.schema.json", request, "the score request");
            await client.PublishAsync(queue, request, Ct);
        }

        // Each request: a plain JSON reply on replyTo and the ScoreRequestCompleted event in an envelope.
        var messages = await client.ReceiveAsync(4, EventTimeout, Ct);
        var replies = messages.Where(m => !m.Body.TryGetProperty("messageType", out _)).ToList();
        var envelopes = messages.Where(m => m.Body.TryGetProperty("messageType", out _)).ToList();
        Assert.Equal(2, replies.Count);
        Assert.Equal(2, envelopes.Count);
        Assert.All(replies, r => SchemaAssert.Valid("score-request-completed.schema.json", r.Body, "reply"));
        Assert.All(envelopes, e => SchemaAssert.ValidEnvelope("score-request-completed.schema.json", e.Body, "ScoreRequestCompleted"));
        var outcomes = replies.ToDictionary(r => r.Body.GetProperty("requestId").GetString()!, r => r.Body.GetProperty("outcome").GetString());
        Assert.Equal(ScoreRequestOutcome.Scored, outcomes[prefix + "scored"]);
        Assert.Equal(ScoreRequestOutcome.Rejected, outcomes[prefix + "rejected"]);
    }

    [Fact]
    public async Task Drift_profiles_reports_and_events_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-drift", ServiceRoles.All, Ct);
        var api = host.Client.BaseAddress!.ToString();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, Ct);
        await using var events = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var reports = new ConcurrentDictionary<string, bool>();
        events.Accept = e => reports.ContainsKey(e.Body.GetProperty("message").GetProperty("reportId").GetString()!);
        await events.ListenToAsync("BatchScoring.Contracts:DriftDetected", Ct);
        await events.ListenToAsync("BatchScoring.Contracts:RetrainingRequested", Ct);

        SchemaAssert.Valid("model-profile.schema.json", await CliJsonAsync(0, "models", "profile", "--name", "churn", "--input", WriteCsv(host, "ref.csv", 2_000, seed: 1, shift: 0), "--key-column", "id", "--json", "--api", api), "models profile --json");
        SchemaAssert.Valid("model-profile.schema.json", await host.Client.GetStringAsync("/api/models/churn/profile", Ct), "GET /api/models/churn/profile");

        var (response, job, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = WriteCsv(host, "shifted.csv", 2_000, seed: 3, shift: 3), KeyColumn = "id", OutputTable = "scoring.contract_drift", ChunkRows = 1_000,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(1), Ct)).State);
        await Poll.UntilAsync(async () => (await AuditableRowsAsync(host)) >= 2, TimeSpan.FromSeconds(30), "drift samples of the job", Ct);

        var audit = await CliJsonAsync(3, "drift", "audit", "--name", "churn", "--json", "--api", api);
        SchemaAssert.Valid("drift-report.schema.json", audit, "drift audit --json");
        reports[JsonDocument.Parse(audit).RootElement.GetProperty("id").GetString()!] = true;
        SchemaAssert.EachValid("drift-report.schema.json", await host.Client.GetStringAsync("/api/models/churn/drift", Ct), "GET /api/models/churn/drift");
        SchemaAssert.EachValid("drift-report.schema.json", await CliJsonAsync(0, "drift", "reports", "--name", "churn", "--json", "--api", api), "drift reports --json");
        using (var direct = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { version = 1 }, Ct)) // a numeric version
        {
            var report = await direct.Content.ReadAsStringAsync(Ct);
            Assert.True(direct.IsSuccessStatusCode, report);
            SchemaAssert.Valid("drift-report.schema.json", report, "POST /api/models/churn/drift/audit");
        }

        var published = await events.ReceiveAsync(2, EventTimeout, Ct);
        var types = published.ToDictionary(e => e.Body.GetProperty("messageType")[0].GetString()!, e => e.Body);
        SchemaAssert.ValidEnvelope("drift-detected.schema.json", types["urn:message:BatchScoring.Contracts:DriftDetected"], "DriftDetected");
        SchemaAssert.ValidEnvelope("retraining-requested.schema.json", types["urn:message:BatchScoring.Contracts:RetrainingRequested"], "RetrainingRequested");
    }

    [Fact]
    public void Every_schema_is_a_valid_draft_2020_12_schema_with_an_id_and_a_readme_row()
    {
        var readme = File.ReadAllText(Path.Combine(SchemaAssert.Directory, "README.md"));
        Assert.NotEmpty(SchemaAssert.Files);
        foreach (var file in SchemaAssert.Files)
        {
            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(SchemaAssert.Directory, file)));
            Assert.Equal("https://json-schema.org/draft/2020-12/schema", document.RootElement.GetProperty("$schema").GetString());
            Assert.Equal("urn:batchscoring:schemas:" + file[..^".schema.json".Length], document.RootElement.GetProperty("$id").GetString());
            Assert.Contains($"`{file}`", readme, StringComparison.Ordinal);
        }

        // The validator is not lenient: a required property left out, a wrong type and a bad format are refused.
        using var bad = JsonDocument.Parse("""{"jobId":"not-a-guid","model":"m","modelVersion":"1","totalRows":1,"scoredRows":1,"failedRows":0,"outputTable":null,"completedAt":"2025-06-01T00:00:00Z"}""");
        var violations = SchemaAssert.Violations("scoring-job-completed.schema.json", bad.RootElement);
        Assert.Contains(violations, v => v.Contains("outputParquet", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("/modelVersion", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("/jobId", StringComparison.Ordinal));
    }

    /// <summary>Runs the CLI and returns its standard output (the JSON); <paramref name="exit"/> null accepts any exit code.</summary>
    private static async Task<string> CliJsonAsync(int? exit, params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(Ct, args);
        Assert.True(exit is null || code == exit, $"batchscore {string.Join(' ', args)} exited {code}:\n{stdout}{stderr}");
        return stdout;
    }

    private static async Task AssertProblemAsync(ServiceTestHost host, HttpMethod method, string path, string? json, HttpStatusCode status, bool errors = false)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await host.Client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"{method} {path}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        SchemaAssert.Valid("problem-details.schema.json", body, $"{method} {path} ({(int)status})");
        Assert.Equal(errors, JsonDocument.Parse(body).RootElement.TryGetProperty("errors", out _));
    }

    private static async Task<long> AuditableRowsAsync(ServiceTestHost host)
    {
        await using var db = Npgsql.NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT count(*) FROM scoring.drift_samples WHERE model_name = 'churn'");
        return (long)(await count.ExecuteScalarAsync(Ct))!;
    }

    private static string[] Names() => Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();

    private static string WriteCsv(ServiceTestHost host, string name, int rows, int seed, double shift)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("id," + string.Join(',', Names()) + "\n");
        for (var r = 0; r < rows; r++)
        {
            csv.Append(r.ToString(CultureInfo.InvariantCulture));
            for (var f = 0; f < Features; f++)
            {
                var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                csv.Append(',').Append(Math.Round(normal + (f == 0 ? shift : 0), 5).ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var path = Path.Combine(host.WorkDir, name);
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
