using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchScoring.Application;
using Microsoft.Extensions.Configuration;

namespace BatchScoring.Benchmarks;

/// <summary>
/// The benchmark's command line: generates the benchmark models and datasets, measures the ceilings (raw ONNX Runtime, raw
/// binary COPY, Parquet read and write) and one end-to-end job per workload through RabbitMQ, a separate worker
/// process and PostgreSQL, and prints the ratios, the formed batch size and the worker's peak RSS.
/// </summary>
public static class BenchCommand
{
    public static RootCommand Create()
    {
        var workload = new Option<string>("--workload") { Description = "light, heavy or all.", DefaultValueFactory = _ => "all" };
        workload.AcceptOnlyFromAmong("light", "heavy", "all");
        var rows = new Option<long?>("--rows") { Description = "Rows per dataset, overriding the workload's size (light 1,000,000; heavy 200,000); for quick runs." };
        var batchRows = new Option<int>("--batch-rows") { Description = "Rows per inference call (and per COPY in the worker).", DefaultValueFactory = _ => 8192 };
        var chunkRows = new Option<int>("--chunk-rows") { Description = "Rows per chunk (one message, one transaction; also the Parquet row group of the generated data).", DefaultValueFactory = _ => 50_000 };
        var workDir = new Option<DirectoryInfo?>("--work-dir") { Description = "Where generated models and datasets are cached (by size) and runs write their files. Default: <temp>/batchscore-bench." };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON on stdout (progress goes to stderr)." };
        var parquet = new Option<bool>("--parquet") { Description = "Also run a second end-to-end job that writes Parquet part files next to the table, and report it." };
        var requests = new Option<int>("--requests")
        {
            Description = "Request mode: N single-row and N 100-row requests through queue score-requests, with and without dynamic batching, and N single-row at half the peak rate (0 = skip).",
            DefaultValueFactory = _ => 20_000, // fewer finish in a fraction of a second at full speed: too short to measure
        };
        var requestsOnly = new Option<bool>("--requests-only") { Description = "Run only the request-mode benchmark (no job workloads)." };
        var requestRepeats = new Option<int>("--request-repeats")
        {
            Description = "Request mode: how many times the single-row max-rate runs are repeated (with and without batching); the speedup is taken between medians.",
            DefaultValueFactory = _ => 3,
        };
        var variants = new Option<string>("--variants")
        {
            Description = "Light workload: dataset variants scored by the service and by the peer script, comma-separated: rg8k, rg16k, rg128k (DuckDB Parquet with those row groups), csv (DuckDB CSV), gen (the generator's Parquet, row groups of --chunk-rows).",
            DefaultValueFactory = _ => DatasetVariant.DefaultList,
        };
        var overheadRuns = new Option<int>("--overhead-runs")
        {
            Description = "Light workload: 10-row jobs timed from submit to `--wait` returning, after 2 warm-up jobs (0 = skip); the median is reported.",
            DefaultValueFactory = _ => 10,
        };
        var largeJob = new Option<bool>("--large-job")
        {
            Description = "Light workload: also a job on 10 × --rows rows (10M by default; long), reporting the serve process's peak RSS and rows/s against the rg16k job.",
        };
        var cli = new Option<FileInfo?>("--cli")
        {
            Description = "The batchscore program that submits the jobs, e.g. a published tool (default: the batchscore built next to the benchmark).",
        };
        var command = new RootCommand(
            "batchscore-bench: measure ONNX Runtime, COPY and Parquet ceilings, end-to-end job throughput and request mode (needs ConnectionStrings__Postgres and ConnectionStrings__RabbitMq).")
        {
            workload, rows, batchRows, chunkRows, workDir, json, parquet, variants, overheadRuns, largeJob, cli, requests, requestsOnly, requestRepeats,
        };
        command.Subcommands.Add(PeerScript.Create());
        command.SetAction(async (parse, ct) =>
        {
            var configuration = new ConfigurationBuilder()
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            string postgres, rabbit;
            try
            {
                postgres = configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
                rabbit = configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq);
            }
            catch (InvalidOperationException ex)
            {
                await Console.Error.WriteLineAsync($"bench: {ex.Message}");
                await Console.Error.WriteLineAsync(
                    "bench: e.g. ConnectionStrings__Postgres='Host=127.0.0.1;Port=55432;Username=postgres' ConnectionStrings__RabbitMq='amqp://guest:guest@127.0.0.1:56720/'");
                return 2;
            }

            var batch = parse.GetValue(batchRows);
            var chunk = parse.GetValue(chunkRows);
            var rowsOverride = parse.GetValue(rows);
            if (batch < 1 || chunk < 1 || rowsOverride is < 1)
            {
                await Console.Error.WriteLineAsync("bench: --batch-rows, --chunk-rows and --rows must be at least 1.");
                return 2;
            }

            var requestCount = parse.GetValue(requests);
            if (requestCount < 0 || (parse.GetValue(requestsOnly) && requestCount < 1))
            {
                await Console.Error.WriteLineAsync("bench: --requests must be at least 1 with --requests-only, and not negative.");
                return 2;
            }

            if (parse.GetValue(requestRepeats) is < 1 or > 15)
            {
                await Console.Error.WriteLineAsync("bench: --request-repeats must be between 1 and 15.");
                return 2;
            }

            var (variantList, variantError) = DatasetVariant.Parse(parse.GetRequiredValue(variants));
            if (variantError is not null || parse.GetValue(overheadRuns) is < 0 or > 1000)
            {
                await Console.Error.WriteLineAsync($"bench: {variantError ?? "--overhead-runs must be between 0 and 1000."}");
                return 2;
            }

            if (parse.GetValue(cli) is { Exists: false } missing)
            {
                await Console.Error.WriteLineAsync($"bench: --cli {missing.FullName} does not exist.");
                return 2;
            }

            var selected = parse.GetRequiredValue(workload);
            var workloads = BenchWorkload.All.Where(w => !parse.GetValue(requestsOnly) && (selected == "all" || w.Name == selected))
                .Select(w => rowsOverride is { } n ? w with { Rows = n } : w)
                .ToArray();
            var dir = parse.GetValue(workDir)?.FullName ?? Path.Combine(Path.GetTempPath(), "batchscore-bench");
            var service = configuration.GetSection(BatchScoringOptions.SectionName).Get<BatchScoringOptions>() ?? new BatchScoringOptions();
            var settings = new BenchSettings(
                workloads, batch, chunk, dir, parse.GetValue(parquet), variantList!, parse.GetValue(overheadRuns), parse.GetValue(largeJob), postgres, rabbit, service)
            {
                CommandLine = ReproduceCommand(new ReproduceOptions(
                    selected, rowsOverride, batch, chunk, parse.GetValue(workDir)?.FullName, parse.GetValue(json), parse.GetValue(parquet),
                    string.Join(',', variantList!.Select(v => v.Name)), parse.GetValue(overheadRuns), parse.GetValue(largeJob),
                    requestCount, parse.GetValue(requestsOnly), parse.GetValue(requestRepeats)) { Cli = parse.GetValue(cli)?.FullName }),
                CliPath = parse.GetValue(cli)?.FullName,
            };
            var report = await new BenchRunner(settings).RunAsync(ct);
            if (requestCount > 0)
            {
                report.Requests = await new RequestBenchRunner(postgres, rabbit, requestCount, parse.GetValue(requestRepeats)).RunAsync(ct);
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
            }
            else
            {
                if (report.Workloads.Count > 0)
                {
                    BenchReportPrinter.Print(report);
                }

                if (report.Requests is not null)
                {
                    RequestBenchRunner.Print(report.Requests);
                }
            }

            return report.Workloads.All(Succeeded) && report.Requests?.Error is null ? 0 : 1;
        });
        return command;
    }

    /// <summary>Every part of the workload ran: its ceilings and jobs, each variant (readable, results equal to the peer's), the extra cases.</summary>
    internal static bool Succeeded(WorkloadResult w) =>
        w.Error is null && w.Variants.All(v => v.Error is null) && w.Overhead?.Error is null && w.LargeJob?.Error is null;

    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // Σ, ×, Δ as they are: the report is read by people too
    };

    /// <summary>The options a run was started with, for the command line that reproduces it.</summary>
    internal sealed record ReproduceOptions(
        string Workload, long? Rows, int BatchRows, int ChunkRows, string? WorkDir, bool Json, bool Parquet, string Variants, int OverheadRuns, bool LargeJob,
        int Requests, bool RequestsOnly, int RequestRepeats)
    {
        public string? Cli { get; init; }
    }

    internal static string ReproduceCommand(ReproduceOptions o)
    {
        var parts = new List<string> { "dotnet", "run", "-c", "Release", "--project", "tests/BatchScoring.Benchmarks", "--" };
        if (o.RequestsOnly)
        {
            parts.Add("--requests-only");
        }
        else
        {
            parts.AddRange(["--workload", o.Workload]);
            if (o.Rows is { } n)
            {
                parts.AddRange(["--rows", n.ToString(CultureInfo.InvariantCulture)]);
            }

            parts.AddRange(["--batch-rows", o.BatchRows.ToString(CultureInfo.InvariantCulture), "--chunk-rows", o.ChunkRows.ToString(CultureInfo.InvariantCulture)]);
            parts.AddRange(["--variants", o.Variants, "--overhead-runs", o.OverheadRuns.ToString(CultureInfo.InvariantCulture)]);
            if (o.LargeJob)
            {
                parts.Add("--large-job");
            }

            if (o.Cli is not null)
            {
                parts.AddRange(["--cli", o.Cli]);
            }

            if (o.WorkDir is not null)
            {
                parts.AddRange(["--work-dir", o.WorkDir]);
            }

            if (o.Parquet)
            {
                parts.Add("--parquet");
            }
        }

        parts.AddRange(["--requests", o.Requests.ToString(CultureInfo.InvariantCulture)]);
        if (o.Requests > 0)
        {
            parts.AddRange(["--request-repeats", o.RequestRepeats.ToString(CultureInfo.InvariantCulture)]);
        }

        if (o.Json)
        {
            parts.Add("--json");
        }

        return string.Join(' ', parts);
    }
}
