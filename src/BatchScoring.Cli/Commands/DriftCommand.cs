using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchScoring.Api;
using BatchScoring.Application.Drift;
using BatchScoring.Application.Performance;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

/// <summary><c>models profile</c>, <c>drift audit</c> and <c>drift reports</c>: reference profiles and drift audits through the API.</summary>
public static class DriftCommand
{
    /// <summary>Exit code of <c>drift audit</c> when drift was found (0: audited, no drift; 1: error).</summary>
    public const int DriftFound = 3;

    /// <summary>Exit code of <c>drift audit</c> when too few rows were sampled to judge (verdict "insufficient data").</summary>
    public const int InsufficientData = 4;

    public static Command CreateProfile()
    {
        var name = CliOptions.ModelName();
        var version = new Option<string?>("--version") { Description = "Version number or alias (default: latest)." };
        var input = new Option<string>("--input") { Description = "Reference dataset: Parquet/CSV file or directory, as the service sees it.", Required = true };
        var key = new Option<string?>("--key-column") { Description = "A column that is not a feature (when the model takes numeric columns by position)." };
        var features = new Option<string?>("--features") { Description = "Feature columns in model order, comma-separated (models with one [N, F] input)." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var profile = new Command("profile", "Build a model version's reference profile from a dataset (inputs and predictions), for drift audits.")
        {
            name, version, input, key, features, json,
        };
        profile.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var request = new ProfileRequest
            {
                Version = parse.GetValue(version),
                Input = parse.GetRequiredValue(input),
                KeyColumn = parse.GetValue(key),
                Features = parse.GetValue(features)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            };
            var result = await api.PostJsonAsync<ModelProfile>($"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/profile", request, ct);

            Console.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(result, ApiClient.Json)
                : $"{result.Model} v{result.Version}: profile of {result.Features.Count} features and {result.Predictions.Count} prediction columns from {result.Rows:N0} rows of {result.Source}");
            return 0;
        });
        return profile;
    }

    public static Command Create()
    {
        var name = CliOptions.ModelName();
        var version = new Option<string?>("--version") { Description = "Version number or alias (default: latest)." };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var window = new Option<string?>("--window") { Description = "Recent samples to compare, e.g. 6h or 2d; a bare number is hours (default: the service's BatchScoring:Drift:WindowHours)." }.WithLegacy("--window-hours");
        var audit = new Command(
            "audit",
            $"Compare recent scored inputs and predictions with the reference profile now (exit code 0: no drift, {DriftFound}: drift found, {InsufficientData}: too few sampled rows to judge).")
        {
            name, version, window, json,
        };
        audit.SetAction(async (parse, ct) =>
        {
            int? windowHours = null;
            if (parse.GetValue(window) is { } w)
            {
                windowHours = PerformanceOptions.ParseWindow(w) is { } span && span.TotalHours == Math.Floor(span.TotalHours)
                    ? (int)span.TotalHours
                    : throw new Errors.CliException(Errors.ExitCodes.Usage, $"--window must be a number of hours or days such as 6h or 2d, at most 366 days (was '{w}').");
            }

            using var api = ApiClient.From(parse);
            var report = await api.PostJsonAsync<DriftReport>(
                $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/drift/audit", new { version = parse.GetValue(version), windowHours }, ct);

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, ApiClient.Json));
            }
            else
            {
                Print(report!);
            }

            return report!.Verdict switch
            {
                DriftVerdicts.Drift => DriftFound,
                DriftVerdicts.InsufficientData => InsufficientData,
                _ => 0,
            };
        });

        var reportsName = CliOptions.ModelName();
        var reportsVersion = new Option<int?>("--version") { Description = "Only this version." };
        var limit = new Option<int>("--limit") { Description = "Newest reports to show.", DefaultValueFactory = _ => 20 };
        var reportsJson = new Option<bool>("--json") { Description = "Machine-readable output." };
        var html = new Option<FileInfo?>("--output-html") { Description = "Write the listed reports as one self-contained HTML file (histograms as inline SVG)." }.WithLegacy("--html");
        var reports = new Command("reports", "Stored drift reports of a model, newest first.") { reportsName, reportsVersion, limit, reportsJson, html };
        reports.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var query = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(reportsName))}/drift?limit={parse.GetValue(limit)}"
                + (parse.GetValue(reportsVersion) is { } v ? $"&version={v}" : "");
            var list = await api.GetAsync<List<DriftReport>>(query, ct);
            if (parse.GetValue(html) is { } file)
            {
                await File.WriteAllTextAsync(file.FullName, DriftReportHtml.Document($"Drift reports of {parse.GetRequiredValue(reportsName)}", list), ct);
                Console.Error.WriteLine($"Wrote {list.Count} drift report(s) to {file.FullName}");
            }

            if (parse.GetValue(reportsJson))
            {
                Console.WriteLine(JsonSerializer.Serialize(list, ApiClient.Json));
                return 0;
            }

            foreach (var r in list)
            {
                var drifted = r.Columns.Where(c => c.Drifted).Select(c => c.Name).ToList();
                Console.WriteLine(
                    $"{r.CreatedAt:u}  {r.Model} v{r.Version}  {r.Trigger,-8} {r.Rows,9:N0} rows  "
                    + r.Verdict switch
                    {
                        DriftVerdicts.Drift => $"DRIFT ({string.Join(", ", drifted)}){Events(r)}",
                        DriftVerdicts.InsufficientData => "insufficient data (too few sampled rows to judge; no events)",
                        _ => "no drift",
                    }
                    + $"  {r.Id}");
            }

            return 0;
        });

        return new Command("drift", "Drift audits against reference profiles (see `models profile`).") { audit, reports };
    }

    private static string Events(DriftReport report) => (report.EventsPublished, report.RetrainingRequested) switch
    {
        (true, true) => ", DriftDetected and RetrainingRequested published",
        (true, false) => ", DriftDetected published (retraining waits for more drifted audits or its cooldown)",
        (false, true) => ", RetrainingRequested published (DriftDetected within its cooldown)",
        _ => ", no events (within the cooldown)",
    };

    /// <param name="report">The audit.</param>
    /// <param name="scope">What was compared, when not the service's window of samples.</param>
    internal static void Print(DriftReport report, string? scope = null)
    {
        var events = scope is null ? Events(report) : "";
        AnsiConsole.MarkupLine(
            $"[bold]{Markup.Escape(report.Model)} v{report.Version}[/]: {Markup.Escape(scope ?? $"{report.Rows:N0} sampled rows from {report.WindowStart:u} to {report.WindowEnd:u}")} — "
            + report.Verdict switch
            {
                DriftVerdicts.Drift => $"[red]drift[/]{events}",
                DriftVerdicts.InsufficientData => "[yellow]insufficient data[/]: too few sampled rows to judge (BatchScoring:Drift:MinimumRows); no events",
                _ => "[green]no drift[/]",
            });
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in new[] { "column", "kind", "rows", "PSI", "KS D (p)", "chi² (p)", "drift" })
        {
            table.AddColumn(column);
        }

        foreach (var c in report.Columns)
        {
            table.AddRow(
                Markup.Escape(c.Name), c.Kind.ToString(), c.Rows.ToString("N0", CultureInfo.InvariantCulture), c.Psi.ToString("F3", CultureInfo.InvariantCulture),
                c.KsStatistic is { } d ? $"{d:F3} ({c.KsPValue:G2})" : "",
                c.ChiSquare is { } x ? $"{x:F1} ({c.ChiSquarePValue:G2})" : "",
                c.Drifted ? $"[red]{Markup.Escape(c.Reason ?? "yes")}[/]" : Markup.Escape(c.Reason ?? ""));
        }

        AnsiConsole.Write(table);
    }
}
