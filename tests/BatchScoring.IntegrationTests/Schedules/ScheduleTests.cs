using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Cli;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Schedules;

/// <summary>
/// Recurring jobs on real servers, with the roles in separate processes as deployed: the schedule is created through
/// an API (+ worker) host that never fires anything, and fired by a `batchscore serve --roles scheduler` child process
/// sharing Quartz's clustered store.
/// </summary>
public sealed class ScheduleTests(ServerFixture servers)
{
    private const int Features = 4;
    private static readonly string[] FeatureNames = [.. Enumerable.Range(0, Features).Select(f => $"f_{f:D3}")];
    private static readonly TimeZoneInfo Paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_schedule_fires_from_the_scheduler_process_resolving_alias_and_date_at_each_fire_and_survives_a_scheduler_restart()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "sched", ServiceRoles.Api | ServiceRoles.Worker, Ct);
        var v1 = SampleModels.Mlp([Features, 1], seed: 1, featureNames: FeatureNames);
        var v2 = SampleModels.Mlp([Features, 1], seed: 2, featureNames: FeatureNames);
        await host.RegisterModelAsync("churn", v1.Bytes, Ct);
        await host.RegisterModelAsync("churn", v2.Bytes, Ct);
        await SetAliasAsync(host, 1);
        var rows = WriteDailyInputs(host.WorkDir, "in");
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);

        var scheduler = StartScheduler(host);
        try
        {
            using (var created = await host.Client.PostAsJsonAsync("/api/schedules", new CreateSchedule
            {
                Name = "every-3s",
                Cron = "*/3 * * * * ?",
                TimeZone = "Europe/Paris",
                Job = new SubmitScoringJob
                {
                    Model = "churn",
                    ModelVersion = "production",
                    Input = Path.Combine(host.WorkDir, "in", "{date:yyyy-MM-dd_HH}.csv"), // the hour tells Paris from UTC
                    KeyColumn = "id",
                    OutputTable = "scoring.results_sched",
                },
            }, Ct))
            {
                Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync(Ct));
            }

            // A fire submits a job with the input of the fire's date in Paris, scored by the version the alias named.
            var first = await WaitForRunAsync(host, "every-3s", r => r.State == "succeeded", DateTimeOffset.MinValue, scheduler);
            Assert.Equal("cron", first.Kind);
            Assert.Equal(ExpectedInput(host.WorkDir, first.FireTime), first.Input);
            Assert.Equal(1, first.ModelVersion);
            await AssertScoredAsync(db, first.JobId!.Value, v1, 1, rows);

            // list shows the last run and the next one, in the future, on the cron's 3-second grid.
            var listed = Assert.Single((await host.Client.GetFromJsonAsync<List<ScheduleInfo>>("/api/schedules", ServiceTestHost.Json, Ct))!);
            Assert.Equal("active", listed.State);
            Assert.NotNull(listed.LastRun);
            Assert.True(listed.NextRunAt is { } next && next.Second % 3 == 0 && next > first.FireTime, $"next run {listed.NextRunAt:O}");

            // The alias moves between fires: the next fire resolves it again.
            await SetAliasAsync(host, 2);
            var moved = DateTimeOffset.UtcNow;
            var afterMove = await WaitForRunAsync(host, "every-3s", r => r.State == "succeeded", moved.AddSeconds(1), scheduler);
            Assert.Equal(2, afterMove.ModelVersion);
            await AssertScoredAsync(db, afterMove.JobId!.Value, v2, 2, rows);

            // The schedule lives in the store: a new scheduler process (the old one killed, no clean shutdown) fires it.
            scheduler.Kill();
            scheduler.Dispose();
            var restarted = DateTimeOffset.UtcNow;
            Assert.Equal("active", (await host.Client.GetFromJsonAsync<ScheduleInfo>("/api/schedules/every-3s", ServiceTestHost.Json, Ct))!.State);
            scheduler = StartScheduler(host);
            var afterRestart = await WaitForRunAsync(host, "every-3s", r => r.State == "succeeded", restarted.AddSeconds(1), scheduler);
            Assert.Equal(ExpectedInput(host.WorkDir, afterRestart.FireTime), afterRestart.Input);

            // Every run links to its job, and no fire submitted two jobs (a fire cut short by the kill is recovered, not repeated).
            Assert.Equal(0L, await ScalarAsync<long>(db, "SELECT count(*) FROM scoring.schedule_runs WHERE state = 'submitted' AND job_id IS NULL"));
            Assert.Equal(0L, await ScalarAsync<long>(db, "SELECT count(*) FROM (SELECT fire_time FROM scoring.schedule_runs GROUP BY fire_time HAVING count(*) > 1) d"));
            Assert.Equal(0L, await ScalarAsync<long>(db, "SELECT count(*) FROM (SELECT job_id FROM scoring.schedule_runs WHERE job_id IS NOT NULL GROUP BY job_id HAVING count(*) > 1) d"));
            await WaitUntilAsync(
                async () => await ScalarAsync<long>(db, "SELECT count(*) FROM scoring.jobs j WHERE j.idempotency_key LIKE 'schedule:%' AND NOT EXISTS (SELECT 1 FROM scoring.schedule_runs r WHERE r.job_id = j.id)") == 0,
                "a scheduled job is linked to no run",
                scheduler);
        }
        finally
        {
            scheduler.Dispose();
        }
    }

    [Fact]
    public async Task Pause_stops_fires_resume_restarts_them_and_a_missing_input_fails_the_run_with_the_reason()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "schedpause", ServiceRoles.Api | ServiceRoles.Worker, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 1], seed: 1, featureNames: FeatureNames).Bytes, Ct);
        WriteDailyInputs(host.WorkDir, "in");
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        using var scheduler = StartScheduler(host);
        await CreateAsync(host, "paused", "*/2 * * * * ?", Path.Combine(host.WorkDir, "in", "{date:yyyy-MM-dd}.csv"));
        await WaitForRunAsync(host, "paused", r => r.JobId is not null, DateTimeOffset.MinValue, scheduler);

        using (var paused = await host.Client.PostAsync("/api/schedules/paused/pause", null, Ct))
        {
            Assert.True(paused.IsSuccessStatusCode, await paused.Content.ReadAsStringAsync(Ct));
            var info = (await paused.Content.ReadFromJsonAsync<ScheduleInfo>(ServiceTestHost.Json, Ct))!;
            Assert.Equal(("paused", (DateTimeOffset?)null), (info.State, info.NextRunAt));
        }

        using (var refused = await host.Client.PostAsync("/api/schedules/paused/run-now", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        }

        // Proof that time passed with a live scheduler: its own 1-second dispatch-recovery trigger fired well after the
        // pause, over several periods of the paused schedule, while the paused schedule recorded no new fire.
        var pausedAt = DateTimeOffset.UtcNow;
        await WaitUntilAsync(
            async () => await ScalarAsync<long?>(db, "SELECT prev_fire_time FROM qrtz_triggers WHERE trigger_name = 'dispatch-recovery-schedule'") is { } ticks
                && ticks > pausedAt.AddSeconds(10).UtcTicks,
            "the scheduler's own trigger did not fire after the pause", scheduler);
        var firesWhilePaused = await ScalarAsync<long>(
            db, $"SELECT count(*) FROM scoring.schedule_runs WHERE schedule_name = 'paused' AND started_at > '{pausedAt.AddSeconds(3):O}'::timestamptz");
        Assert.Equal(0L, firesWhilePaused);

        using (var resumed = await host.Client.PostAsync("/api/schedules/paused/resume", null, Ct))
        {
            Assert.True(resumed.IsSuccessStatusCode, await resumed.Content.ReadAsStringAsync(Ct));
        }

        var resumedAt = DateTimeOffset.UtcNow;
        var afterResume = await WaitForRunAsync(host, "paused", r => r.JobId is not null, resumedAt, scheduler);
        Assert.Equal("cron", afterResume.Kind); // no catch-up fire for the slots missed while paused

        // run-now through the CLI, following the run's job to its end.
        var api = host.Client.BaseAddress!.ToString();
        var cliRun = await CliProcess.RunAsync(Ct, "schedules", "run-now", "--name", "paused", "--wait", "--timeout", "2m", "--api", api);
        Assert.True(cliRun.Exit == 0, cliRun.Stdout + cliRun.Stderr);

        // A missing input fails that run with the reason; no job is created, so none hangs.
        await CreateAsync(host, "missing", "0 0 3 1 1 ?", Path.Combine(host.WorkDir, "absent", "{date:yyyyMMdd}.csv"));
        ScheduleRunInfo started;
        using (var runNow = await host.Client.PostAsJsonAsync("/api/schedules/missing/run-now", new RunScheduleNow { At = new DateTimeOffset(2026, 3, 1, 0, 30, 0, TimeSpan.FromHours(1)) }, Ct))
        {
            Assert.True(runNow.StatusCode == HttpStatusCode.Accepted, await runNow.Content.ReadAsStringAsync(Ct));
            started = (await runNow.Content.ReadFromJsonAsync<ScheduleRunInfo>(ServiceTestHost.Json, Ct))!;
        }

        var failed = await WaitForRunAsync(host, "missing", r => r.Id == started.Id && r.State != "submitting", DateTimeOffset.MinValue, scheduler);
        Assert.Equal(("failed", "run-now", (Guid?)null), (failed.State, failed.Kind, failed.JobId));
        var expectedPath = Path.Combine(host.WorkDir, "absent", "20260301.csv"); // 28 February in UTC: the date is Paris's
        Assert.Equal(expectedPath, failed.Input);
        Assert.Contains(expectedPath, failed.Error, StringComparison.Ordinal);
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT count(*) FROM scoring.jobs WHERE input_uri = '{expectedPath}'"));
        Assert.Contains("failed", Assert.Single(
            (await host.Client.GetFromJsonAsync<List<ScheduleInfo>>("/api/schedules", ServiceTestHost.Json, Ct))!, s => s.Name == "missing").LastRun!.State,
            StringComparison.Ordinal);

        CliAssert.OneLineError(
            1,
            await CliProcess.RunAsync(Ct, "schedules", "run-now", "--name", "missing", "--at", "2026-03-02T00:30:00+01:00", "--wait", "--timeout", "2m", "--api", api),
            Path.Combine(host.WorkDir, "absent", "20260302.csv"));

        using var deleted = await host.Client.DeleteAsync("/api/schedules/paused", Ct);
        Assert.True(deleted.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Client.GetAsync("/api/schedules/paused", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_version_a_schedule_names_by_number_cannot_be_deleted_until_the_schedule_is()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "schedpin", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 1], seed: 1, featureNames: FeatureNames).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 1], seed: 2, featureNames: FeatureNames).Bytes, Ct);
        using (var created = await host.Client.PostAsJsonAsync("/api/schedules", new CreateSchedule
        {
            Name = "pinned",
            Cron = "0 2 * * *",
            Job = new SubmitScoringJob { Model = "churn", ModelVersion = "1", Input = Path.Combine(host.WorkDir, "{date:yyyy-MM-dd}.csv"), KeyColumn = "id", OutputTable = "scoring.results_pin" },
        }, Ct))
        {
            Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync(Ct));
        }

        using (var refused = await host.Client.DeleteAsync("/api/models/churn/versions/1", Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            Assert.Contains("schedule 'pinned'", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using (var other = await host.Client.DeleteAsync("/api/models/churn/versions/2", Ct))
        {
            Assert.True(other.IsSuccessStatusCode, await other.Content.ReadAsStringAsync(Ct)); // v2 is named by no schedule
        }

        using (var deleted = await host.Client.DeleteAsync("/api/schedules/pinned", Ct))
        {
            Assert.True(deleted.IsSuccessStatusCode);
        }

        using var freed = await host.Client.DeleteAsync("/api/models/churn/versions/1", Ct);
        Assert.True(freed.IsSuccessStatusCode, await freed.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Invalid_cron_time_zone_model_or_placeholder_is_a_400_naming_the_field_and_cli_exit_2()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "schedbad", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 1], seed: 1, featureNames: FeatureNames).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "{date:yyyy-MM-dd}.csv");

        async Task<string> BadRequestAsync(object body, string field)
        {
            using var response = await host.Client.PostAsJsonAsync("/api/schedules", body, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = System.Text.Json.JsonDocument.Parse(text);
            Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty(field, out _), $"no error for {field}: {text}");
            return text;
        }

        object Body(string cron = "0 2 * * *", string? zone = "Europe/Paris", string model = "churn", string? version = "latest", string? path = null) => new
        {
            name = "nightly",
            cron,
            timeZone = zone,
            job = new { model, modelVersion = version, input = path ?? input, keyColumn = "id", outputTable = "scoring.results_nightly" },
        };

        Assert.Contains("five", await BadRequestAsync(Body(cron: "0 25 * * *"), "cron"), StringComparison.Ordinal);
        await BadRequestAsync(Body(cron: "every night"), "cron");
        Assert.Contains("Mars/Olympus", await BadRequestAsync(Body(zone: "Mars/Olympus"), "timeZone"), StringComparison.Ordinal);
        Assert.Contains("nochurn", await BadRequestAsync(Body(model: "nochurn"), "job.model"), StringComparison.Ordinal);
        await BadRequestAsync(Body(version: "production"), "job.model"); // no such alias yet
        await BadRequestAsync(Body(path: Path.Combine(host.WorkDir, "{day}.csv")), "job.input");
        await BadRequestAsync(Body(path: "relative/{date}.csv"), "job.input");
        Assert.Empty((await host.Client.GetFromJsonAsync<List<ScheduleInfo>>("/api/schedules", ServiceTestHost.Json, Ct))!);

        var api = host.Client.BaseAddress!.ToString();
        string[] CreateArgs(string cron, string zone) =>
            ["schedules", "create", "--name", "nightly", "--cron", cron, "--time-zone", zone, "--model", "churn", "--input", input, "--key-column", "id",
             "--output-table", "scoring.results_nightly", "--api", api];
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, CreateArgs("0 2 * *", "UTC")), "cron");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, CreateArgs("0 2 * * *", "Nowhere/City")), "timeZone");

        var ok = await CliProcess.RunAsync(Ct, [.. CreateArgs("0 2 * * *", "Europe/Paris"), "--json"]);
        Assert.True(ok.Exit == 0, ok.Stdout + ok.Stderr);
        var created = System.Text.Json.JsonSerializer.Deserialize<ScheduleInfo>(ok.Stdout, ServiceTestHost.Json)!;
        Assert.Equal(("0 0 2 * * ?", "Europe/Paris"), (created.QuartzCron, created.TimeZone));

        // The next run is 02:00 in Paris, computed here with the BCL alone.
        var parisNow = TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, Paris);
        var day = parisNow.TimeOfDay < TimeSpan.FromHours(2) ? parisNow.Date : parisNow.Date.AddDays(1);
        var expected = new DateTimeOffset(day.AddHours(2), Paris.GetUtcOffset(day.AddHours(2)));
        Assert.Equal(expected.UtcDateTime, created.NextRunAt!.Value.UtcDateTime);

        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, CreateArgs("0 2 * * *", "Europe/Paris")), "already exists");
        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "schedules", "pause", "--name", "nosuch", "--api", api), "nosuch");
        var list = await CliProcess.RunAsync(Ct, "schedules", "list", "--api", api);
        Assert.True(list.Exit == 0, list.Stderr);
        Assert.Contains("nightly", list.Stdout, StringComparison.Ordinal);
        Assert.True(list.Stdout.Contains(expected.ToUniversalTime().ToString("u", CultureInfo.InvariantCulture), StringComparison.Ordinal), list.Stdout);
    }

    private static string ExpectedInput(string workDir, DateTimeOffset fireTime) =>
        Path.Combine(workDir, "in", TimeZoneInfo.ConvertTime(fireTime, Paris).ToString("yyyy-MM-dd_HH", CultureInfo.InvariantCulture) + ".csv");

    /// <summary>One CSV per Paris day and per Paris hour around now (yyyy-MM-dd.csv, yyyy-MM-dd_HH.csv); returns the rows.</summary>
    private static float[][] WriteDailyInputs(string workDir, string folder)
    {
        var random = new Random(5);
        var rows = Enumerable.Range(0, 50).Select(_ => FeatureNames.Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
        var csv = new StringBuilder("id," + string.Join(',', FeatureNames) + "\n");
        for (var r = 0; r < rows.Length; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r},{string.Join(',', rows[r].Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}\n");
        }

        Directory.CreateDirectory(Path.Combine(workDir, folder));
        var now = TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, Paris);
        foreach (var day in new[] { now.Date.AddDays(-1), now.Date, now.Date.AddDays(1) })
        {
            File.WriteAllText(Path.Combine(workDir, folder, day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + ".csv"), csv.ToString());
        }

        for (var hour = -2; hour <= 6; hour++)
        {
            File.WriteAllText(Path.Combine(workDir, folder, now.AddHours(hour).ToString("yyyy-MM-dd_HH", CultureInfo.InvariantCulture) + ".csv"), csv.ToString());
        }

        return rows;
    }

    /// <summary>Every row in the results with the score of an independent forward pass of the expected version.</summary>
    private static async Task AssertScoredAsync(NpgsqlDataSource db, Guid jobId, MlpModel model, int version, float[][] rows)
    {
        await using var select = db.CreateCommand("SELECT id, score, model_version FROM scoring.results_sched WHERE job_id = $1");
        select.Parameters.AddWithValue(jobId);
        await using var reader = await select.ExecuteReaderAsync(Ct);
        var seen = 0;
        while (await reader.ReadAsync(Ct))
        {
            seen++;
            Assert.Equal(version, reader.GetInt32(2));
            Assert.Equal(MlpReference.Forward(model, rows[(int)reader.GetInt64(0)])[0], reader.GetFloat(1), 1e-4f);
        }

        Assert.Equal(rows.Length, seen);
    }

    private static async Task SetAliasAsync(ServiceTestHost host, int version)
    {
        using var response = await host.Client.PutAsJsonAsync("/api/models/churn/aliases/production", new { version }, Ct);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    private static async Task CreateAsync(ServiceTestHost host, string name, string cron, string input)
    {
        using var response = await host.Client.PostAsJsonAsync("/api/schedules", new CreateSchedule
        {
            Name = name,
            Cron = cron,
            TimeZone = "Europe/Paris",
            Job = new SubmitScoringJob { Model = "churn", ModelVersion = "latest", Input = input, KeyColumn = "id", OutputTable = "scoring.results_sched" },
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>A scheduler role in its own process, looking at the store every second, its reconciler firing every second.</summary>
    private static ServeProcess StartScheduler(ServiceTestHost host)
    {
        var environment = host.ChildEnvironment();
        environment["BatchScoring__Scheduler__IdleWaitSeconds"] = "1";
        environment["BatchScoring__DispatchRecoverySchedule"] = "* * * * * ?";
        environment["Logging__LogLevel__BatchScoring"] = "Information";
        return ServeProcess.Start("scheduler", environment);
    }

    private static async Task<ScheduleRunInfo> WaitForRunAsync(
        ServiceTestHost host, string schedule, Func<ScheduleRunInfo, bool> condition, DateTimeOffset firedAfter, ServeProcess scheduler)
    {
        ScheduleRunInfo? found = null;
        await WaitUntilAsync(
            async () =>
            {
                var runs = await host.Client.GetFromJsonAsync<List<ScheduleRunInfo>>($"/api/schedules/{schedule}/runs?limit=100", ServiceTestHost.Json, Ct);
                found = runs!.Where(r => r.FireTime > firedAfter).OrderBy(r => r.FireTime).FirstOrDefault(condition);
                return found is not null;
            },
            $"no run of {schedule} fired after {firedAfter:O} met the condition",
            scheduler);
        return found!;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure, ServeProcess scheduler)
    {
        var timeout = TimeSpan.FromSeconds(120);
        var elapsed = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.False(scheduler.HasExited, $"the scheduler process exited:\n{scheduler.Output}");
            Assert.True(elapsed.Elapsed < timeout, $"{failure} within {timeout.TotalSeconds} s\n{scheduler.Output}");
            await Task.Delay(100, Ct);
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        var value = await command.ExecuteScalarAsync(Ct);
        return value is null or DBNull ? default! : (T)value;
    }
}
