using System.CommandLine;
using System.Text.Json;
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
        var input = new Option<string>("--input") { Description = "Parquet file, directory of Parquet files, or CSV file (as the workers see it).", Required = true };
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
        var wait = new Option<bool>("--wait") { Description = "Follow progress until the job ends; exit 0 only if it succeeded." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command("submit", "Submit a scoring job.")
        {
            model, input, key, passthrough, features, table, parquet, chunkRows, batchRows, allowNonFinite, maxFailedRows, maxFailedPercent, idempotencyKey, wait, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var modelText = parse.GetRequiredValue(model);
            var at = modelText.IndexOf('@', StringComparison.Ordinal);
            var request = new SubmitScoringJob
            {
                Model = at < 0 ? modelText : modelText[..at],
                ModelVersion = at < 0 ? null : modelText[(at + 1)..],
                Input = Path.GetFullPath(parse.GetRequiredValue(input)),
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
                IdempotencyKey = parse.GetValue(idempotencyKey),
            };
            using var api = ApiClient.From(parse);
            var (ok, status, error) = await api.PostJsonAsync<JobStatus>("api/jobs", request, ct);
            if (!ok)
            {
                Console.Error.WriteLine($"error: {error}");
                return 2;
            }

            if (!parse.GetValue(wait))
            {
                Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(status, ApiClient.Json) : status!.Id.ToString());
                return 0;
            }

            Console.Error.WriteLine($"Job {status!.Id}: {status.TotalRows:N0} rows, {status.ChunksTotal} chunks, model {status.Model} v{status.ModelVersion}");
            var final = await FollowAsync(api, status.Id, ct);
            if (final is null)
            {
                return 1;
            }

            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(final, ApiClient.Json) : Describe(final));
            return final.State == "succeeded" ? 0 : 1;
        });
        return command;
    }

    private static async Task<JobStatus?> FollowAsync(ApiClient api, Guid id, CancellationToken cancellationToken)
    {
        JobStatus? last = null;
        long reported = 0;
        await CliProgress.RunAsync($"Job {id.ToString()[..8]}", (await api.GetAsync<JobStatus>($"api/jobs/{id}", cancellationToken)).Value?.TotalRows ?? 0, async advance =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var (ok, status, error) = await api.GetAsync<JobStatus>($"api/jobs/{id}", cancellationToken);
                if (!ok)
                {
                    Console.Error.WriteLine($"error: {error}");
                    return;
                }

                last = status!;
                var done = status!.ScoredRows + status.FailedRows;
                advance(done - reported);
                reported = done;
                if (status.State is "succeeded" or "failed" or "cancelled")
                {
                    return;
                }

                await Task.Delay(500, cancellationToken);
            }
        });
        return last;
    }

    private static Command Status()
    {
        var id = new Argument<Guid>("id") { Description = "Job id." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command("status", "Show a job's progress and outcome.") { id, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var (ok, status, error) = await api.GetAsync<JobStatus>($"api/jobs/{parse.GetValue(id)}", ct);
            if (!ok)
            {
                Console.Error.WriteLine($"error: {error}");
                return 1;
            }

            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(status, ApiClient.Json) : Describe(status!));
            return 0;
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
            var (ok, jobs, error) = await api.GetAsync<List<JobStatus>>(query, ct);
            if (!ok)
            {
                Console.Error.WriteLine($"error: {error}");
                return 1;
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(jobs, ApiClient.Json));
                return 0;
            }

            var grid = new Table().AddColumns("id", "state", "model", "rows", "scored", "failed", "created");
            foreach (var job in jobs!)
            {
                grid.AddRow(job.Id.ToString(), job.State, $"{job.Model} v{job.ModelVersion}", $"{job.TotalRows:N0}", $"{job.ScoredRows:N0}", $"{job.FailedRows:N0}", $"{job.CreatedAt:u}");
            }

            AnsiConsole.Write(grid);
            return 0;
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
            var (ok, status, error) = await api.PostJsonAsync<JobStatus>($"api/jobs/{parse.GetValue(id)}/{verb}", new { }, ct);
            Console.Error.WriteLine(ok ? $"{status!.Id}: {status.State}" : $"error: {error}");
            return ok ? 0 : 1;
        });
        return command;
    }

    private static string Describe(JobStatus s)
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
        return string.Join(Environment.NewLine, lines);
    }
}
