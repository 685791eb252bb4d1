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
        var model = new Option<string>("--model") { Description = "Model name, optionally name@version or name@alias.", Required = true };
        var input = new Option<string?>("--input") { Description = "Parquet file, directory of Parquet files, or CSV file (as the workers see it)." };
        var inputSql = new Option<string?>("--input-sql") { Description = "Instead of --input: a single SELECT whose rows are scored, e.g. \"select customer_id, f0, f1 from features where day = '2026-12-01'\" (needs --input-source; split by --key-column ranges)." };
        var inputSource = new Option<string?>("--input-source") { Description = "With --input-sql: a PostgreSQL source configured on the service as BatchScoring:Sources:<name>." };
        var key = new Option<string>("--key-column") { Description = "Column identifying each row.", Required = true };
        var passthrough = CliOptions.List("--passthrough", "Columns copied into the results.");
        var features = CliOptions.List("--features", "Feature columns in model order (single [N,F] input).");
        var table = new Option<string?>("--output-table") { Description = "Results table, e.g. scoring.results_churn." };
        var parquet = new Option<string?>("--output-parquet") { Description = "Directory for Parquet part files and _SUCCESS." };
        var chunkRows = new Option<int?>("--chunk-rows") { Description = "Rows per chunk message." };
        var batchRows = new Option<int?>("--batch-rows") { Description = "Rows per inference call." };
        var allowNonFinite = new Option<bool>("--allow-non-finite") { Description = "Let NaN/Infinity reach the model." };
        var maxFailedRows = new Option<long?>("--max-failed-rows") { Description = "Fail the job past this many failed rows." };
        var maxFailedPercent = new Option<double?>("--max-failed-percent") { Description = "Fail the job past this percentage of failed rows (default 1)." };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "Resubmitting with the same key returns the same job." };
        var challenger = new Option<string?>("--challenger")
        {
            Description = "Also score every row with this version (name@version or name@alias, same inputs as --model): results in <table>_challenger and challenger/, comparison in `jobs status`.",
        };
        var wait = new Option<bool>("--wait") { Description = "Follow progress until the job ends; the exit code tells how it ended (0 succeeded, 1 failed, 5 cancelled)." };
        var timeout = CliOptions.Duration("--timeout", "With --wait: give up waiting after this long (exit 6); the job keeps running.");
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command("submit", "Submit a scoring job. Example: batchscore jobs submit --model churn@production --input-sql \"select customer_id, f0, f1 from features\" --input-source warehouse --challenger churn@staging --key-column customer_id --output-table scoring.results_churn --wait")
        {
            model, input, inputSql, inputSource, key, passthrough, features, table, parquet, chunkRows, batchRows, allowNonFinite, maxFailedRows, maxFailedPercent, idempotencyKey, challenger, wait, timeout, json,
        };
        command.Validators.Add(TimeoutNeedsWait(timeout, wait));
        command.Validators.Add(result =>
        {
            var hasInput = result.GetResult(input) is not null;
            var hasSql = result.GetResult(inputSql) is not null;
            if (hasInput == hasSql)
            {
                result.AddError("Give --input (files) or --input-sql with --input-source (a query), one of the two.");
            }
            else if (hasSql != (result.GetResult(inputSource) is not null))
            {
                result.AddError(hasSql ? "--input-sql needs --input-source (a source configured as BatchScoring:Sources:<name>)." : "--input-source is only used with --input-sql.");
            }
        });
        command.SetAction(async (parse, ct) =>
        {
            var modelText = parse.GetRequiredValue(model);
            var at = modelText.IndexOf('@', StringComparison.Ordinal);
            var request = new SubmitScoringJob
            {
                Model = at < 0 ? modelText : modelText[..at],
                ModelVersion = at < 0 ? null : modelText[(at + 1)..],
                Input = parse.GetValue(input) is { } path ? Path.GetFullPath(path) : "",
                InputSql = parse.GetValue(inputSql),
                InputSource = parse.GetValue(inputSource),
                KeyColumn = parse.GetRequiredValue(key),
                Passthrough = CliOptions.Values(parse, passthrough),
                Features = CliOptions.ValuesOrNull(parse, features),
                OutputTable = parse.GetValue(table),
                OutputParquet = parse.GetValue(parquet) is { } p ? Path.GetFullPath(p) : null,
                ChunkRows = parse.GetValue(chunkRows),
                BatchRows = parse.GetValue(batchRows),
                AllowNonFinite = parse.GetValue(allowNonFinite),
                MaxFailedRows = parse.GetValue(maxFailedRows),
                MaxFailedPercent = parse.GetValue(maxFailedPercent),
                // A key of our own makes a retried submit (after a 503 or a dropped connection) return the same job, never a second one.
                IdempotencyKey = parse.GetValue(idempotencyKey) ?? $"cli-{Guid.NewGuid():N}",
                Challenger = parse.GetValue(challenger),
            };
            using var api = ApiClient.From(parse);
            var status = await api.PostJsonAsync<JobStatus>("api/jobs", request, ct, idempotent: true);
            if (!parse.GetValue(wait))
            {
                Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(status, ApiClient.Json) : status.Id.ToString());
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
            var status = await api.GetAsync<JobStatus>($"api/jobs/{parse.GetValue(id)}", ct);
            if (parse.GetValue(wait))
            {
                return await JobWaiter.WaitAsync(api, status, parse.GetValue(timeout), parse.GetValue(json), ct);
            }

            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(status, ApiClient.Json) : Describe(status));
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
        var command = new Command(verb, description) { id };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var status = await api.PostJsonAsync<JobStatus>($"api/jobs/{parse.GetValue(id)}/{verb}", new { }, ct);
            Console.Error.WriteLine($"{status.Id}: {status.State}");
            return ExitCodes.Succeeded;
        });
        return command;
    }

    internal static string Describe(JobStatus s)
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
        return string.Join(Environment.NewLine, lines);
    }
}
