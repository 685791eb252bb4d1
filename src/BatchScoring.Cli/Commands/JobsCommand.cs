using System.CommandLine;
using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

public static class JobsCommand
{
    public static Command Create() => new("jobs", "Submit and follow scoring jobs through the status API.")
    {
        Submit(), Status(), List(), Control("cancel", "Stop scheduling a job's remaining chunks."), Control("retry", "Re-run what did not succeed in a failed or cancelled job."),
    };

    private static Command Submit()
    {
        var job = new JobSubmitOptions();
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "Resubmitting with the same key returns the same job." };
        var wait = new Option<bool>("--wait") { Description = "Follow progress until the job ends; the exit code tells how it ended (0 succeeded, 1 failed, 5 cancelled)." };
        var timeout = CliOptions.Duration("--timeout", "With --wait: give up waiting after this long (exit 6); the job keeps running.");
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command(
            "submit",
            "Submit a scoring job.\n\nExamples:\n  batchscore jobs submit --model churn@production --input data/ --key-column customer_id --output-table scoring.results_churn --wait\n"
            + "  batchscore jobs submit --model churn@production --challenger churn@staging --input-sql \"select customer_id, f0, f1 from features\" --input-source warehouse --key-column customer_id --output-table scoring.results_churn");
        job.AddTo(command);
        foreach (var option in new Option[] { idempotencyKey, wait, timeout, json })
        {
            command.Options.Add(option);
        }

        command.Validators.Add(TimeoutNeedsWait(timeout, wait));
        command.SetAction(async (parse, ct) =>
        {
            // A key of our own makes a retried submit (after a 503 or a dropped connection) return the same job, never a second one.
            var request = job.ToRequest(parse, parse.GetValue(idempotencyKey) ?? $"cli-{Guid.NewGuid():N}");
            using var api = ApiClient.From(parse);
            var status = await api.SubmitJobAsync(request, ct);
            if (!parse.GetValue(wait))
            {
                Console.WriteLine(parse.GetValue(json) ? status.ToJson() : status.Id.ToString());
                return ExitCodes.Succeeded;
            }

            Console.Error.WriteLine($"Job {status.Id}: {status.TotalRows:N0} rows, {status.ChunksTotal} chunks, model {status.Model} v{status.ModelVersion}");
            return await JobWaiter.WaitAsync(api, status, parse.GetValue(timeout), parse.GetValue(json), ct);
        });
        return command;
    }

    private static Action<System.CommandLine.Parsing.CommandResult> TimeoutNeedsWait(Option<TimeSpan?> timeout, Option<bool> wait) => result =>
    {
        if (result.GetResult(timeout) is not null && !result.GetValue(wait))
        {
            result.AddError("--timeout needs --wait.");
        }
    };

    private static Command Status()
    {
        var id = new Argument<Guid>("id") { Description = "Job id." };
        var wait = new Option<bool>("--wait") { Description = "Follow progress until the job ends; the exit code tells how it ended (0 succeeded, 1 failed, 5 cancelled)." };
        var timeout = CliOptions.Duration("--timeout", "With --wait: give up waiting after this long (exit 6); the job keeps running.");
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command("status", "Show a job's progress and outcome.") { id, wait, timeout, json };
        command.Validators.Add(TimeoutNeedsWait(timeout, wait));
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var status = await api.GetJobAsync($"api/jobs/{parse.GetValue(id)}", ct);
            if (parse.GetValue(wait))
            {
                return await JobWaiter.WaitAsync(api, status, parse.GetValue(timeout), parse.GetValue(json), ct);
            }

            Console.WriteLine(parse.GetValue(json) ? status.ToJson() : Describe(status));
            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command List()
    {
        var state = new Option<string?>("--state") { Description = "Only jobs in this state." };
        var model = new Option<string?>("--model") { Description = "Only jobs of this model." };
        var limit = new Option<int>("--limit") { DefaultValueFactory = _ => 20 };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command("list", "List jobs, newest first.") { state, model, limit, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var query = $"api/jobs?limit={parse.GetValue(limit)}"
                + (parse.GetValue(state) is { } s ? $"&state={Uri.EscapeDataString(s)}" : "")
                + (parse.GetValue(model) is { } m ? $"&model={Uri.EscapeDataString(m)}" : "");
            var jobs = await api.GetAsync<List<JobStatus>>(query, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(jobs, ApiClient.Json));
                return ExitCodes.Succeeded;
            }

            var grid = new Table().AddColumns("id", "state", "model", "rows", "scored", "failed", "created");
            foreach (var job in jobs)
            {
                grid.AddRow(job.Id.ToString(), job.State, $"{job.Model} v{job.ModelVersion}", $"{job.TotalRows:N0}", $"{job.ScoredRows:N0}", $"{job.FailedRows:N0}", $"{job.CreatedAt:u}");
            }

            AnsiConsole.Write(grid);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command Control(string verb, string description)
    {
        var id = new Argument<Guid>("id") { Description = "Job id." };
        var json = CliOptions.Json();
        var command = new Command(verb, description) { id, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var status = await api.PostJsonAsync<JobStatus>($"api/jobs/{parse.GetValue(id)}/{verb}", new { }, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(status, ApiClient.Json));
            }
            else
            {
                Console.Error.WriteLine($"{status.Id}: {status.State}");
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    internal static string Describe(JobDocument s)
    {
        var lines = new List<string>
        {
            $"Job {s.Id}: {s.State}",
            $"  model      {s.Model} v{s.ModelVersion} (sha256 {s.ModelSha256[..Math.Min(12, s.ModelSha256.Length)]})",
            $"  rows       {s.ScoredRows:N0} scored, {s.FailedRows:N0} failed, of {s.TotalRows:N0}",
            $"  chunks     {s.ChunksDone}/{s.ChunksTotal} done, {s.ChunksFailed} failed",
        };
        if (s.RowsPerSecond is { } rate)
        {
            lines.Add($"  rate       {rate:N0} rows/s" + (s.EtaSeconds is { } eta ? $", ETA {TimeSpan.FromSeconds(eta):hh\\:mm\\:ss}" : ""));
        }

        if (s.OutputTable is not null)
        {
            lines.Add($"  table      {s.OutputTable}");
        }

        if (s.OutputParquet is not null)
        {
            lines.Add($"  parquet    {s.OutputParquet}");
        }

        if (s.Error is not null)
        {
            lines.Add($"  error      {s.Error}");
        }

        lines.AddRange(s.FailureSummary.Select(f => $"  failures   {f.Count:N0} × {f.Reason}"));
        lines.AddRange(ChallengerLines.Describe(s.Challenger));
        lines.AddRange(StageLines.Describe(s.Stages));
        return string.Join(Environment.NewLine, lines);
    }
}
