using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using BatchScoring.Application.Performance;
using BatchScoring.Cli.Errors;

namespace BatchScoring.Cli.Commands;

/// <summary><c>labels ingest</c> and <c>performance report</c>: delayed labels and realised performance through the API.</summary>
public static class LabelsCommand
{
    public static Command Create()
    {
        var model = CliOptions.ModelName();
        var input = new Option<string?>("--input") { Description = "Parquet file, directory of Parquet files, or CSV file with the labels (as the service sees it)." };
        var sql = new Option<string?>("--input-sql") { Description = "A query returning the labels, run read-only on --input-source." };
        var source = new Option<string?>("--input-source") { Description = "Name of a PostgreSQL source configured in the service (BatchScoring:Sources:<name>)." };
        var key = new Option<string>("--key-column") { Description = "Column with the row key (as in the model's results tables).", Required = true };
        var label = new Option<string>("--label-column") { Description = "Column with the outcome: a class (text, integer, boolean) or a number.", Required = true };
        var at = new Option<string?>("--labelled-at-column") { Description = "Optional timestamp column: when each outcome was known (default: now)." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var ingest = new Command(
            "ingest",
            "Load delayed labels and join them to the model's scored rows by key; a key ingested again gets the new label.")
        {
            model, input, sql, source, key, label, at, json,
        };
        ingest.SetAction(async (parse, ct) =>
        {
            var file = parse.GetValue(input);
            var query = parse.GetValue(sql);
            if ((file is null) == (query is null) || (query is not null && parse.GetValue(source) is null))
            {
                throw new CliException(ExitCodes.Usage, "give --input FILE, or --input-sql QUERY with --input-source NAME.");
            }

            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(model))}/labels";
            var body = new LabelIngestRequest
            {
                Input = file is null ? null : Path.GetFullPath(file),
                InputSql = query,
                InputSource = parse.GetValue(source),
                KeyColumn = parse.GetRequiredValue(key),
                LabelColumn = parse.GetRequiredValue(label),
                LabelledAtColumn = parse.GetValue(at),
            };

            // A large ingest runs for minutes inside the request: no per-attempt timeout, and no resend once sent.
            var result = await api.SendAsync<LabelIngestResult>(
                () => new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: ApiClient.Json) },
                idempotent: false,
                ct,
                attemptTimeout: Timeout.InfiniteTimeSpan);
            Console.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(result, ApiClient.Json)
                : string.Create(
                    CultureInfo.InvariantCulture,
                    $"{result.Model}: {result.Rows:N0} rows from {result.Source}: {result.Inserted:N0} new labels, {result.Updated:N0} replaced, {result.Skipped:N0} skipped (no key or label) in {result.Seconds:N1} s"));
            return 0;
        });

        return new Command("labels", "Delayed labels (ground truth) for realised performance (see `performance report`).") { ingest };
    }

    public static Command CreatePerformance()
    {
        var name = CliOptions.ModelName();
        var version = new Option<string?>("--version") { Description = "Only this version (number or alias); default: every version scored in the window." };
        var window = new Option<string?>("--window") { Description = "Rows scored in this recent window, e.g. 7d or 36h (default: the service's BatchScoring:Performance:WindowHours)." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var report = new Command(
            "report",
            "Compute and store realised metrics per model version from the labelled scored rows of a window.")
        {
            name, version, window, json,
        };
        report.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(window) is { } w && PerformanceOptions.ParseWindow(w) is null)
            {
                throw new CliException(ExitCodes.Usage, $"--window must be a number of days or hours such as 7d or 36h, at most 366 days (was '{w}').");
            }

            using var api = ApiClient.From(parse);
            var query = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/performance?"
                + string.Join('&', new[] { ("window", parse.GetValue(window)), ("version", parse.GetValue(version)) }
                    .Where(p => p.Item2 is not null).Select(p => $"{p.Item1}={Uri.EscapeDataString(p.Item2!)}"));
            var reports = await api.GetAsync<List<PerformanceReport>>(query.TrimEnd('?'), ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(reports, ApiClient.Json));
                return 0;
            }

            if (reports.Count == 0)
            {
                Console.WriteLine($"{parse.GetRequiredValue(name)}: no rows scored in the window.");
                return 0;
            }

            Print(reports);
            return 0;
        });

        return new Command("performance", "Realised performance from delayed labels (see `labels ingest`).") { report };
    }

    /// <summary>One line per version (plain text, so scripts can grep a metric as name=value).</summary>
    private static void Print(IReadOnlyList<PerformanceReport> reports)
    {
        Console.WriteLine($"{reports[0].Model}: rows scored from {reports[0].WindowStart:u} to {reports[0].WindowEnd:u}");
        foreach (var r in reports)
        {
            var metrics = string.Join(" ", MetricNames.All.Where(m => r.Metrics.Get(m) is not null).Select(m => string.Create(CultureInfo.InvariantCulture, $"{m}={r.Metrics.Get(m):0.####}")));
            var baseline = r.BaselineReportId is null ? "baseline: this report (or too few labels to judge)"
                : r.Drops.Count == 0 ? "no drop against the baseline"
                : "DROPPED: " + string.Join(", ", r.Drops.Select(d => string.Create(CultureInfo.InvariantCulture, $"{d.Metric} {d.Baseline:0.####} -> {d.Current:0.####}")))
                    + (r.RetrainingRequested ? "; RetrainingRequested published" : "; within the retraining cooldown");
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"  v{r.Version}  {r.Task}  {r.ScoredRows:N0} scored, {r.LabelledRows:N0} labelled ({r.LabelCoverage ?? 0:P1})  {(metrics.Length == 0 ? "no metrics" : metrics)}  {baseline}"));
        }
    }
}
