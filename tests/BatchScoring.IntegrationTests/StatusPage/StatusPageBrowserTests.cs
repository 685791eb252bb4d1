using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using BatchScoring.Application.Drift;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Interfaces;
using BatchScoring.IntegrationTests.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using Npgsql;

namespace BatchScoring.IntegrationTests.StatusPage;

/// <summary>
/// The status page in a real headless browser (Debian's chromium driven by Playwright): it asks for a read key, shows a
/// job's progress advancing while a worker scores it, the job's chunks and failed rows, the models, and a drift report.
/// The last screenshot is kept as TestResults/status-page.png.
/// </summary>
public sealed class StatusPageBrowserTests(ServerFixture servers)
{
    private const string AdminKey = "status-page-admin-key";
    private const string ReadKey = "status-page-read-key";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static string ChromiumPath => Environment.GetEnvironmentVariable("BATCHSCORING_CHROMIUM") ?? "/usr/bin/chromium";

    [Fact]
    public async Task The_page_shows_a_running_job_advance_its_chunks_failed_rows_models_and_a_drift_report()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: ./build.sh deps installs Debian's chromium (or set BATCHSCORING_CHROMIUM).");
        // No worker yet: the job waits with its chunks queued, so the page sees it at 0 % before any row is scored.
        await using var host = await ServiceTestHost.StartAsync(servers, "status-page", ServiceRoles.Api | ServiceRoles.Scheduler, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Api:Keys:0"] = AdminKey,
            ["BatchScoring:Api:ReadOnlyKeys:0"] = ReadKey,
        });
        host.Client.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
        await DriftScenario.RegisterAndProfileAsync(host, Ct);
        using (var alias = await host.Client.PutAsJsonAsync("/api/models/churn/aliases/production", new { version = 1 }, Ct))
        {
            Assert.True(alias.IsSuccessStatusCode, await alias.Content.ReadAsStringAsync(Ct));
        }

        var input = DriftScenario.WriteCsv(host, "shifted.csv", 6_000, seed: 3, shift: 2);
        var lines = await File.ReadAllLinesAsync(input, Ct);
        lines[6] = "5,abc,0.5,0.5"; // two rows that cannot be scored: failed rows with their reason
        lines[8] = "7,0.1,<b>x</b>,0.5";
        await File.WriteAllLinesAsync(input, lines, Ct);
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = input, KeyColumn = "id", OutputTable = "scoring.results_churn", ChunkRows = 200,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var jobId = submitted!.Id;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var origin = host.Client.BaseAddress!.ToString().TrimEnd('/');

        // Without a key the page holds no data and asks for one.
        await page.GotoAsync(origin + "/?refresh=250");
        await Assertions.Expect(page.Locator("#auth")).ToBeVisibleAsync();
        Assert.Equal(0, await page.Locator("#jobs tbody tr").CountAsync());

        // With the read key in the address: stored for the tab, removed from the address bar, never written into the page.
        await page.GotoAsync(origin + "/?key=" + ReadKey + "&refresh=250");
        var row = page.Locator($"#jobs tbody tr[data-job-id='{jobId}']");
        await Assertions.Expect(row).ToHaveAttributeAsync("data-progress", "0.0");
        Assert.DoesNotContain(ReadKey, page.Url, StringComparison.Ordinal);
        Assert.DoesNotContain(ReadKey, await page.ContentAsync(), StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#auth")).ToBeHiddenAsync();

        // This host has the scheduler role: its started scheduler checks in, and the page says so. No worker runs yet:
        // the job's 30 chunk messages wait, and the page warns that nothing consumes them.
        await Assertions.Expect(page.Locator("#schedulers")).ToHaveAttributeAsync("data-schedulers", "1");
        await Assertions.Expect(page.Locator("#schedulers")).ToContainTextAsync("Schedulers: 1 running");
        var workers = page.Locator("#workers");
        await Assertions.Expect(workers).ToHaveAttributeAsync("data-ready", "30");
        await Assertions.Expect(workers).ToHaveAttributeAsync("data-consumers", "0");
        await Assertions.Expect(workers).ToHaveClassAsync("warning");
        await Assertions.Expect(workers).ToContainTextAsync("No worker consumes");

        // A worker joins, one chunk at a time: the page, never reloaded, follows the job to the end.
        var workerSettings = host.Settings.ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
        workerSettings["BatchScoring:ChunkConcurrency"] = "1";
        await using var worker = ServiceHost.Build(new ServeSettings(ServiceRoles.Worker, "http://127.0.0.1:0", Migrate: false), configure: c => c.AddInMemoryCollection(workerSettings));
        await worker.StartAsync(Ct);
        var seen = new List<double> { 0 }; // shown above, before the worker started
        await Poll.UntilAsync(
            async () =>
            {
                // One read of both: the page may redraw between two separate reads.
                var shown = (await row.EvaluateAsync<string>("r => r.dataset.state + '|' + r.dataset.progress")).Split('|');
                var value = double.Parse(shown[1], CultureInfo.InvariantCulture);
                if (seen[^1] != value)
                {
                    seen.Add(value);
                }

                return shown[0] == "succeeded";
            },
            TimeSpan.FromMinutes(2), "the page showing the job succeeded", Ct, TimeSpan.FromMilliseconds(50));
        Assert.Equal(100, seen[^1]);
        await Assertions.Expect(workers).ToHaveAttributeAsync("data-consumers", "1");
        await Assertions.Expect(workers).ToContainTextAsync("Workers: 1 consuming");
        Assert.True(seen.Count >= 3, $"progress seen by the page: {string.Join(", ", seen)} (expected intermediate values)");
        Assert.Equal(seen.Order(), seen);
        var status = await host.GetStatusAsync(jobId, Ct);
        Assert.Equal(2, status.FailedRows);
        await Assertions.Expect(row.Locator("td.failed")).ToHaveTextAsync("2");
        await Assertions.Expect(row.Locator("td.reason")).ToContainTextAsync(status.FailureSummary[0].Reason);
        await Assertions.Expect(row.Locator("td.rate")).Not.ToBeEmptyAsync();

        // The job's chunks and failed rows; the hostile cell stays text.
        await row.Locator("button.open-job").ClickAsync();
        await Assertions.Expect(page.Locator("#chunks tbody tr[data-state='succeeded']")).ToHaveCountAsync(30);
        await Assertions.Expect(page.Locator("#failed-rows tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#failed-rows")).ToContainTextAsync("abc");
        Assert.Equal(0, await page.Locator("#failed-rows b").CountAsync());

        // Models, versions and aliases; then a drift report audited now, drawn with one SVG per column.
        var model = page.Locator(".model[data-model='churn']");
        await Assertions.Expect(model).ToContainTextAsync("v1");
        await Assertions.Expect(model.Locator(".alias-history")).ToContainTextAsync("production: ");
        await Assertions.Expect(model.Locator(".alias-history")).ToContainTextAsync("→ v1 (created) by Keys[0]");
        var report = await AuditUntilDriftAsync(host);
        await model.Locator("button.open-drift").ClickAsync();
        var section = page.Locator($"#drift section.drift-report[data-report-id='{report.Id}']");
        await Assertions.Expect(section).ToBeVisibleAsync();
        await Assertions.Expect(section.Locator("svg.drift-histogram")).ToHaveCountAsync(report.Columns.Count);
        var f0 = report.Columns.Single(c => c.Name == "f_000");
        await Assertions.Expect(section.Locator(".drift-column[data-column='f_000']")).ToContainTextAsync(f0.Psi.ToString("0.####", CultureInfo.InvariantCulture));
        await Assertions.Expect(section.Locator(".drift-column[data-column='f_000'] h4")).ToContainTextAsync("drifted");

        var screenshots = Path.Combine(AppContext.BaseDirectory, "TestResults");
        Directory.CreateDirectory(screenshots);
        var file = Path.Combine(screenshots, "status-page.png");
        await page.ScreenshotAsync(new() { Path = file, FullPage = true });
        Assert.True(new FileInfo(file).Length > 10_000);
        TestContext.Current.AddAttachment("status-page.png", await File.ReadAllBytesAsync(file, Ct), "image/png");
    }

    [Fact]
    public async Task The_shell_is_public_but_holds_no_data_and_the_page_routes_need_the_read_scope()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "status-shell", ServiceRoles.Api, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Api:Keys:0"] = AdminKey,
        });
        using var shell = await host.Client.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.OK, shell.StatusCode);
        Assert.Equal("text/html", shell.Content.Headers.ContentType!.MediaType);
        Assert.Contains("script-src 'self'", shell.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Contains("/status/page.js", await shell.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using var script = await host.Client.GetAsync("/status/page.js", Ct);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);

        foreach (var path in new[] { "/status/models/churn/drift", $"/api/jobs/{Guid.NewGuid()}/chunks", $"/api/jobs/{Guid.NewGuid()}/failed-rows" })
        {
            using var anonymous = await host.Client.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add("X-Api-Key", AdminKey);
            using var missing = await host.Client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
    }

    [Fact]
    public async Task Without_a_running_scheduler_the_page_says_what_stops_happening()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: ./build.sh deps installs Debian's chromium (or set BATCHSCORING_CHROMIUM).");
        await using var host = await ServiceTestHost.StartAsync(servers, "status-noscheduler", ServiceRoles.Api | ServiceRoles.Worker, Ct);

        // A scheduler that stopped five minutes ago: Quartz keeps its row until another instance removes it.
        var stopped = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(5);
        await using (var db = NpgsqlDataSource.Create(host.PostgresConnectionString))
        await using (var insert = db.CreateCommand(
            "INSERT INTO qrtz_scheduler_state (sched_name, instance_name, last_checkin_time, checkin_interval) VALUES ('batchscoring', 'gone-1', $1, 2000)"))
        {
            insert.Parameters.AddWithValue(stopped.UtcTicks);
            await insert.ExecuteNonQueryAsync(Ct);
        }

        var json = await host.Client.GetStringAsync("/api/service", Ct);
        SchemaAssert.Valid("service-status.schema.json", json, "GET /api/service");
        var service = System.Text.Json.JsonSerializer.Deserialize<BatchScoring.Api.ServiceStatus>(json, ServiceTestHost.Json)!;
        var gone = Assert.Single(service.Schedulers);
        Assert.Equal(("gone-1", false, 2.0), (gone.Instance, gone.Alive, gone.CheckInIntervalSeconds));
        Assert.Equal(stopped.UtcTicks, gone.LastCheckIn.UtcTicks);
        Assert.Null(service.ReconcilerFiredAt);
        Assert.Null(service.ChunkQueueError);
        Assert.Equal((host.Settings["BatchScoring:QueuePrefix"] + "score-chunks", 1L, 0L), (service.ChunkQueue!.Queue, service.ChunkQueue.Consumers, service.ChunkQueue.ReadyMessages));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync(host.Client.BaseAddress!.ToString().TrimEnd('/') + "/?refresh=250");
        var line = page.Locator("#schedulers.warning");
        await Assertions.Expect(line).ToHaveAttributeAsync("data-schedulers", "0");
        await Assertions.Expect(line).ToContainTextAsync("No scheduler is running: lost chunk messages are not re-sent");
        await Assertions.Expect(page.Locator("#workers")).ToContainTextAsync("Workers: 1 consuming; 0 chunk messages waiting");
    }

    private static async Task<DriftReport> AuditUntilDriftAsync(ServiceTestHost host)
    {
        DriftReport? report = null;
        await Poll.UntilAsync(
            async () =>
            {
                using var audit = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { }, Ct);
                report = System.Text.Json.JsonSerializer.Deserialize<DriftReport>(await audit.Content.ReadAsStringAsync(Ct), ServiceTestHost.Json);
                return report?.Verdict == DriftVerdicts.Drift;
            },
            TimeSpan.FromSeconds(20), "an audit that finds the shifted f_000", Ct);
        return report!;
    }
}
