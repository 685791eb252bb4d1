using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

/// <summary><c>batchscore schedules</c>: recurring scoring jobs through <c>/api/schedules</c> (docs/schedules.md).</summary>
public static class SchedulesCommand
{
    public static Command Create() => new("schedules", "Recurring scoring jobs: a job submitted on a cron schedule (docs/schedules.md).")
    {
        CreateSchedule(), List(), Control("pause", "Stop firing until resumed."),
        Control("resume", "Fire again from the next cron time (fires missed while paused are not made up)."),
        Control("delete", "Delete a schedule and its run history (its jobs stay)."), RunNow(), Runs(),
    };

    private static Option<string> NameOption() => new Option<string>("--schedule") { Description = "The schedule's name.", Required = true }.WithLegacy("--name");

    private static Option<bool> JsonOption() => new("--json") { Description = "Machine-readable output." };

    private static Command CreateSchedule()
    {
        var name = NameOption();
        var cron = new Option<string>("--cron")
        {
            Description = "When to fire: five fields (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"), Quartz's six or seven (seconds first), or @daily.",
            Required = true,
        };
        var timeZone = new Option<string?>("--time-zone") { Description = "IANA time zone of the cron and the placeholders, e.g. Europe/Paris (default UTC)." };
        var job = new JobSubmitOptions();
        var json = JsonOption();
        var command = new Command(
            "create",
            "Create a schedule that submits a job (any `jobs submit` option) at each cron time; {date:FORMAT} in --input, --output-parquet "
            + "and --output-table is filled from the fire time.")
        {
            name, cron, timeZone,
        };
        job.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var request = new CreateSchedule
            {
                Name = parse.GetRequiredValue(name),
                Cron = parse.GetRequiredValue(cron),
                TimeZone = parse.GetValue(timeZone),
                Job = job.ToRequest(parse, idempotencyKey: null),
            };
            using var api = ApiClient.From(parse);
            var info = await api.PostJsonAsync<ScheduleInfo>("api/schedules", request, ct);
            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(info, ApiClient.Json) : Describe(info));
            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command List()
    {
        var json = JsonOption();
        var command = new Command("list", "List schedules with their last and next run.") { json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var schedules = await api.GetAsync<List<ScheduleInfo>>("api/schedules", ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(schedules, ApiClient.Json));
                return ExitCodes.Succeeded;
            }

            var grid = new Table().AddColumns("name", "state", "cron", "time zone", "model", "last run", "next run");
            foreach (var s in schedules)
            {
                grid.AddRow(
                    Markup.Escape(s.Name), s.State, Markup.Escape(s.Cron), Markup.Escape(s.TimeZone),
                    Markup.Escape($"{s.Job.Model}@{s.Job.ModelVersion ?? "latest"}"), Markup.Escape(LastRun(s.LastRun)), s.NextRunAt is { } next ? $"{next:u}" : "-");
            }

            Write(grid);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command Control(string verb, string description)
    {
        var name = NameOption();
        var json = JsonOption();
        var command = new Command(verb, description) { name, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = $"api/schedules/{Uri.EscapeDataString(parse.GetRequiredValue(name))}";
            var info = verb == "delete"
                ? await api.SendAsync<ScheduleInfo>(() => new HttpRequestMessage(HttpMethod.Delete, path), idempotent: false, ct)
                : await api.PostJsonAsync<ScheduleInfo>($"{path}/{verb}", new { }, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(info, ApiClient.Json));
            }
            else
            {
                Console.Error.WriteLine(verb == "delete" ? $"{info.Name}: deleted" : $"{info.Name}: {info.State}" + (info.NextRunAt is { } next ? $", next run {next:u}" : ""));
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command RunNow()
    {
        var name = NameOption();
        var at = new Option<DateTimeOffset?>("--at") { Description = "Fill the placeholders as if fired at this time (ISO 8601, e.g. 2026-03-01T02:00:00+01:00): a backfill." };
        var wait = new Option<bool>("--wait") { Description = "Wait for the run's job and follow it until it ends; the exit code tells how (0 succeeded, 1 failed, 5 cancelled)." };
        var timeout = CliOptions.Duration("--timeout", "With --wait: give up waiting after this long (exit 6).");
        var json = JsonOption();
        var command = new Command("run-now", "Fire a schedule once, now.")
        {
            name, at, wait, timeout, json,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(timeout) is not null && !result.GetValue(wait))
            {
                result.AddError("--timeout needs --wait.");
            }
        });
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var schedule = Uri.EscapeDataString(parse.GetRequiredValue(name));
            var run = await api.PostJsonAsync<ScheduleRunInfo>($"api/schedules/{schedule}/run-now", new RunScheduleNow { At = parse.GetValue(at) }, ct);
            if (!parse.GetValue(wait))
            {
                Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(run, ApiClient.Json) : run.Id.ToString());
                return ExitCodes.Succeeded;
            }

            var limit = parse.GetValue(timeout);
            var elapsed = Stopwatch.StartNew();
            while (run.JobId is null && run.State == "submitting")
            {
                if (limit is { } l && elapsed.Elapsed > l)
                {
                    Console.Error.WriteLine($"run {run.Id} has no job yet after {l.TotalSeconds:N0} s (is a scheduler role running?)");
                    return ExitCodes.TimedOut;
                }

                await Task.Delay(JobWaiter.PollInterval, ct);
                var runs = await api.GetAsync<List<ScheduleRunInfo>>($"api/schedules/{schedule}/runs?limit=50", ct);
                run = runs.FirstOrDefault(r => r.Id == run.Id) ?? run;
            }

            if (run.JobId is not { } jobId)
            {
                if (parse.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(run, ApiClient.Json));
                }

                throw new CliException(ExitCodes.Failed, $"run {run.Id} submitted no job: {run.Error}");
            }

            var status = await api.GetJobAsync($"api/jobs/{jobId}", ct);
            Console.Error.WriteLine($"Run {run.Id}: job {jobId}, model {status.Model} v{status.ModelVersion}, input {status.Input}");
            var remaining = limit is { } total ? total - elapsed.Elapsed : (TimeSpan?)null;
            return await JobWaiter.WaitAsync(api, status, remaining is { } r && r <= TimeSpan.Zero ? TimeSpan.FromMilliseconds(1) : remaining, parse.GetValue(json), ct);
        });
        return command;
    }

    private static Command Runs()
    {
        var name = NameOption();
        var limit = new Option<int>("--limit") { Description = "How many runs, newest first.", DefaultValueFactory = _ => 20 };
        var json = JsonOption();
        var command = new Command("runs", "A schedule's runs, each with its job (or why it has none).") { name, limit, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var runs = await api.GetAsync<List<ScheduleRunInfo>>(
                $"api/schedules/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/runs?limit={parse.GetValue(limit)}", ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(runs, ApiClient.Json));
                return ExitCodes.Succeeded;
            }

            var grid = new Table().AddColumns("fire time", "kind", "state", "job", "model", "input / error");
            foreach (var r in runs)
            {
                grid.AddRow(
                    $"{r.FireTime:u}", r.Kind, r.State, r.JobId?.ToString() ?? "-", r.ModelVersion is { } v ? $"v{v}" : "-",
                    Markup.Escape(r.Error ?? r.Input ?? ""));
            }

            Write(grid);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>A redirected listing (a script, a log) is not wrapped at the 80 columns Spectre assumes without a terminal.</summary>
    private static void Write(Table grid)
    {
        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 240);
        }

        AnsiConsole.Write(grid);
    }

    private static string LastRun(ScheduleRunInfo? run) => run is null
        ? "-"
        : $"{run.FireTime:u} {run.State}" + (run.JobId is { } id ? $" (job {id.ToString()[..8]})" : "");

    internal static string Describe(ScheduleInfo s) => string.Join(
        Environment.NewLine,
        $"Schedule {s.Name}: {s.State}",
        $"  cron       {s.Cron} ({s.TimeZone}; Quartz: {s.QuartzCron})",
        $"  model      {s.Job.Model}@{s.Job.ModelVersion ?? "latest"} (resolved at each fire)",
        $"  input      {s.Job.Input}",
        $"  next run   {(s.NextRunAt is { } next ? $"{next:u}" : "-")}",
        $"  last run   {LastRun(s.LastRun)}");
}
