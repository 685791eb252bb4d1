using System.Globalization;
using Spectre.Console;

namespace BatchScoring.Benchmarks;

/// <summary>Prints a <see cref="BenchReport"/> as a table, one column per workload.</summary>
internal static class BenchReportPrinter
{
    public static void Print(BenchReport report)
    {
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < 160)
        {
            AnsiConsole.Profile.Width = 160; // a report in a file or pipe: wide tables, not 80 columns
        }

        var env = report.Environment;
        AnsiConsole.MarkupLine($"[bold]batchscore-bench[/] — {env.ProcessorCount} cores, {Markup.Escape(env.Os)}, {Markup.Escape(env.Runtime)}");
        AnsiConsole.MarkupLine(
            $"batch {env.BatchRows:N0} rows, chunk {env.ChunkRows:N0} rows, worker chunk concurrency {env.ChunkConcurrency}, "
            + $"intra-op threads {(env.IntraOpThreads == 0 ? "default (one per core)" : env.IntraOpThreads.ToString(CultureInfo.InvariantCulture))}");
        AnsiConsole.MarkupLine(
            $"PostgreSQL {Markup.Escape(env.PostgresVersion ?? "?")} ({Markup.Escape(env.PostgresDurability ?? "?")}); "
            + $"load average at start {Markup.Escape(env.LoadAverageAtStart ?? "?")}, at end {Markup.Escape(env.LoadAverageAtEnd ?? "?")}");

        var table = new Table().Border(TableBorder.Rounded).AddColumn("");
        foreach (var w in report.Workloads)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(w.Name)}[/]").RightAligned());
        }

        void Row(string label, Func<WorkloadResult, string> value) =>
            table.AddRow([new Markup(label), .. report.Workloads.Select(w => new Markup(Markup.Escape(value(w))))]);

        void Section(string label) => table.AddRow([new Markup($"[grey]{label}[/]"), .. report.Workloads.Select(_ => new Markup(""))]);

        Row("rows × features", w => $"{w.Rows:N0} × {w.Features}");
        Row("model", w => $"{w.Model} ({Provider(w.ExecutionProvider)})");
        Section("ceilings (rows/s)");
        Row("ONNX Runtime, raw Run", w => Rate(w.OrtRowsPerSecond));
        Row("ONNX Runtime, Score() with mapping", w => Rate(w.ScoreRowsPerSecond));
        Row("Parquet read (key, region, features)", w => Rate(w.ParquetReadRowsPerSecond));
        Row("binary COPY (chunk tx, COPY per batch)", w => Rate(w.CopyRowsPerSecond));
        Row("  COPY CPU: client / postgres (s)", w => w.CopySeconds > 0 ? $"{w.CopyClientCpuSeconds:F2} / {w.CopyPostgresCpuSeconds:F2} in {w.CopySeconds:F2} s" : "-");
        Row("Parquet write (part files)", w => Rate(w.ParquetWriteRowsPerSecond));
        Row("serial ceiling 1/(1/ORT + 1/COPY)", w => Rate(w.SerialCeilingRowsPerSecond));
        if (report.Workloads.Any(w => w.EndToEnd is not null))
        {
            AddJob("end to end → table (generated file, --chunk-rows and --batch-rows)", w => w.EndToEnd);
        }

        if (report.Workloads.Any(w => w.EndToEndWithParquet is not null))
        {
            AddJob("end to end → table + Parquet", w => w.EndToEndWithParquet, parquet: true);
        }

        if (report.Workloads.Any(w => w.Error is not null))
        {
            Row("[red]error[/]", w => w.Error ?? "");
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(
            "Ceilings are single-caller, nothing else running; a job's time is the wall clock of `batchscore jobs submit ... --wait --json` (a child process), "
            + "against one `batchscore serve` process with all roles, after a warm-up job.");
        foreach (var w in report.Workloads.Where(w => w.Variants.Count > 0))
        {
            PrintVariants(w, report.Environment.ProcessorCount);
        }

        PrintTargets(report);
        AnsiConsole.MarkupLine($"Reproduce: [bold]{Markup.Escape(report.Command)}[/]  (ConnectionStrings__Postgres, ConnectionStrings__RabbitMq from the environment)");

        void AddJob(string title, Func<WorkloadResult, EndToEndResult?> pick, bool parquet = false)
        {
            Section(title);
            Row("time (s)", w => pick(w) is { } e ? $"{e.Seconds:F2}" + (e.ServerSeconds is { } s ? $" (server {s:F2}, {e.Chunks} chunks)" : "") : "-");
            Row("rows/s", w => pick(w) is { } e ? Rate(e.RowsPerSecond) : "-");
            Row(parquet ? "÷ serial ceiling incl. Parquet write" : "÷ serial ceiling", w => pick(w) is { } e ? $"{e.RatioToSerialCeiling:F2}×" : "-");
            Row("÷ raw ORT", w => pick(w) is { } e ? $"{e.RatioToOrt:F2}×" : "-");
            Row("avg formed batch (rows / inference call)", w => pick(w) is { } e ? $"{e.AverageBatchRows:N0} ({e.InferenceCalls:N0} calls)" : "-");
            Row("worker time in ORT / COPY (s, summed over chunks)", w => pick(w) is { } e ? $"{e.WorkerInferenceSeconds:F1} / {e.WorkerCopySeconds:F1}" : "-");
            Row("CPU: worker / postgres (s; cores busy)", w => pick(w) is { } e
                ? $"{e.WorkerCpuSeconds:F1} / {e.PostgresCpuSeconds:F1} ({(e.WorkerCpuSeconds + e.PostgresCpuSeconds) / e.Seconds:F2})"
                : "-");
            Row("serve peak RSS (MiB)", w => pick(w) is { } e ? $"{e.WorkerPeakRssMiB:N0} (now {e.WorkerRssAfterMiB:N0})" : "-");
            if (report.Workloads.Any(w => pick(w)?.Stages is not null))
            {
                Row("stages (s, from jobs status)", w => pick(w)?.Stages is { } st ? Stages(st) : "-");
            }
        }
    }

    /// <summary>The light workload's variants: service against the peer script and the serial ceiling, one row each.</summary>
    private static void PrintVariants(WorkloadResult w, int cores)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(w.Name)}[/]: {w.Rows:N0} rows, files as pipelines write them — serial ceiling {Rate(w.SerialCeilingRowsPerSecond)} rows/s");
        foreach (var header in VariantHeaders)
        {
            table.AddColumn(new TableColumn(header).RightAligned());
        }

        foreach (var cells in VariantRows(w, cores))
        {
            table.AddRow(cells.Select(c => new Markup(Markup.Escape(c))));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(
            "service: `jobs submit --wait` wall clock, service defaults for chunk and batch sizes (server span and chunks in brackets); peer: the single-process script "
            + "(DuckDB → ONNX Runtime, 8,192-row batches → text COPY, one transaction) as a child process, start to exit; results: both tables compared per key; "
            + "CPU: of the serve process and of PostgreSQL during the job, and their sum ÷ cores, the shortest wall time that much work could take.");
        foreach (var v in w.Variants.Where(v => v.Service?.Stages is not null))
        {
            AnsiConsole.MarkupLine($"  {Markup.Escape(v.Name)} stages (s): {Markup.Escape(Stages(v.Service!.Stages!))}");
        }

        foreach (var v in w.Variants.Where(v => v.Error is not null))
        {
            AnsiConsole.MarkupLine($"  [red]{Markup.Escape(v.Name)}[/]: {Markup.Escape(v.Error!)}");
        }

        if (w.Overhead is { } o)
        {
            AnsiConsole.MarkupLine(o.Error is null
                ? $"10-row job, submit → `--wait` returns: median [bold]{o.MedianSeconds * 1000:F0} ms[/] of {o.Runs} (min {o.MinSeconds * 1000:F0}, max {o.MaxSeconds * 1000:F0}; "
                  + $"server span {(o.MedianServerSeconds is { } span ? $"{span * 1000:F0} ms" : "?")}; CLI start-up alone {o.CliStartupMedianSeconds * 1000:F0} ms)"
                : $"10-row job: [red]{Markup.Escape(o.Error)}[/]");
        }

        if (w.LargeJob is { } l)
        {
            AnsiConsole.MarkupLine(l.Job is { } j
                ? $"large job, {l.Rows:N0} rows: {j.Seconds:F1} s = {Rate(j.RowsPerSecond)} rows/s ({l.RatioOfRowsPerSecond:F2}× the {Markup.Escape(l.ComparedWith ?? "?")} job's rows/s); "
                  + $"serve peak RSS [bold]{j.WorkerPeakRssMiB:N0} MiB[/]"
                : $"large job, {l.Rows:N0} rows: [red]{Markup.Escape(l.Error ?? "not run")}[/]");
        }
    }

    internal static readonly string[] VariantHeaders =
        ["variant", "file", "service s", "service rows/s", "peer s", "peer rows/s", "service ÷ peer", "÷ serial ceiling", "CPU s: serve / pg (÷ cores)", "peak RSS MiB", "results"];

    /// <summary>One row of cells per variant, in <see cref="VariantHeaders"/> order.</summary>
    internal static IEnumerable<string[]> VariantRows(WorkloadResult w, int cores)
    {
        foreach (var v in w.Variants)
        {
            var file = v.RowGroups is { } groups
                ? $"{groups:N0} row groups ≤ {v.RowGroupRowsMax:N0}"
                : v.File is null ? "-" : "CSV";
            var s = v.Service;
            yield return
            [
                v.Name,
                v.File is null ? file : $"{file}, {v.FileMiB:N0} MiB",
                s is null ? "-" : $"{s.Seconds:F2}" + (s.ServerSeconds is { } span ? $" ({span:F2}, {s.Chunks})" : ""),
                s is null ? "-" : Rate(s.RowsPerSecond),
                v.Peer is null ? "-" : $"{v.PeerSeconds:F2}",
                v.Peer is null ? "-" : Rate(v.PeerRowsPerSecond),
                v.Peer is null || s is null ? "-" : $"{v.RatioToPeer:F2}×",
                s is null ? "-" : $"{v.RatioToSerialCeiling:F2}×",
                s is null ? "-" : $"{s.WorkerCpuSeconds:F1} / {s.PostgresCpuSeconds:F1} ({(s.WorkerCpuSeconds + s.PostgresCpuSeconds) / cores:F2})",
                s is null ? "-" : $"{s.WorkerPeakRssMiB:N0}",
                v.ResultsMatch switch { true => "equal", false => "DIFFER", null => v.Error is null ? "-" : "error" },
            ];
        }
    }

    private static void PrintTargets(BenchReport report)
    {
        var targets = report.Workloads.SelectMany(w => w.Targets).ToArray();
        if (targets.Length == 0)
        {
            return;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("[bold]targets[/] (a quiet machine only)").AddColumn("target").AddColumn("needs").AddColumn("actual").AddColumn("");
        foreach (var t in targets)
        {
            var actual = t.Requirement.Contains("MiB", StringComparison.Ordinal) ? $"{t.Actual:N0} MiB"
                : t.Requirement.EndsWith(" s", StringComparison.Ordinal) ? $"{t.Actual * 1000:F0} ms"
                : $"{t.Actual:F2}×";
            table.AddRow(Markup.Escape(t.Name), Markup.Escape(t.Requirement), actual, t.Met ? "[green]met[/]" : "[red]missed[/]");
        }

        AnsiConsole.Write(table);
    }

    private static string Stages(Dictionary<string, double> stages) =>
        string.Join(", ", stages.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F2}")));

    private static string Rate(double value) => double.IsFinite(value) && value > 0 ? value.ToString("N0", CultureInfo.InvariantCulture) : "-";

    private static string Provider(string? provider) => provider?.Replace("ExecutionProvider", "", StringComparison.Ordinal) ?? "?";
}
