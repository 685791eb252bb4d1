using System.Globalization;
using Spectre.Console;

namespace BatchScoring.Benchmarks;

/// <summary>Prints a <see cref="BenchReport"/> as a table, one column per workload.</summary>
internal static class BenchReportPrinter
{
    public static void Print(BenchReport report)
    {
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
        AddJob("end to end → table", w => w.EndToEnd);
        if (report.Workloads.Any(w => w.EndToEndWithParquet is not null))
        {
            AddJob("end to end → table + Parquet", w => w.EndToEndWithParquet, parquet: true);
        }

        Section("targets");
        Row("light: e2e ≥ 1.0 × serial ceiling", w => Target(w, "light:"));
        Row("heavy: e2e ≥ 0.8 × raw ORT", w => Target(w, "heavy:"));
        Row("worker peak RSS < 1 GiB", w => Target(w, "worker peak RSS"));
        if (report.Workloads.Any(w => w.Error is not null))
        {
            Row("[red]error[/]", w => w.Error ?? "");
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("Ceilings are single-caller, nothing else running; e2e is wall clock from POST /api/jobs to succeeded (100 ms polls), after a warm-up job.");
        AnsiConsole.MarkupLine($"Reproduce: [bold]{Markup.Escape(report.Command)}[/]  (ConnectionStrings__Postgres, ConnectionStrings__RabbitMq from the environment)");

        void AddJob(string title, Func<WorkloadResult, EndToEndResult?> pick, bool parquet = false)
        {
            Section(title);
            Row("time (s)", w => pick(w) is { } e ? $"{e.Seconds:F2}" + (e.ServerSeconds is { } s ? $" (server {s:F2})" : "") : "-");
            Row("rows/s", w => pick(w) is { } e ? Rate(e.RowsPerSecond) : "-");
            Row(parquet ? "÷ serial ceiling incl. Parquet write" : "÷ serial ceiling", w => pick(w) is { } e ? $"{e.RatioToSerialCeiling:F2}×" : "-");
            Row("÷ raw ORT", w => pick(w) is { } e ? $"{e.RatioToOrt:F2}×" : "-");
            Row("avg formed batch (rows / inference call)", w => pick(w) is { } e ? $"{e.AverageBatchRows:N0} ({e.InferenceCalls:N0} calls)" : "-");
            Row("worker time in ORT / COPY (s, summed over chunks)", w => pick(w) is { } e ? $"{e.WorkerInferenceSeconds:F1} / {e.WorkerCopySeconds:F1}" : "-");
            Row("CPU: worker / postgres (s; cores busy)", w => pick(w) is { } e
                ? $"{e.WorkerCpuSeconds:F1} / {e.PostgresCpuSeconds:F1} ({(e.WorkerCpuSeconds + e.PostgresCpuSeconds) / e.Seconds:F2})"
                : "-");
            Row("worker peak RSS (MiB)", w => pick(w) is { } e ? $"{e.WorkerPeakRssMiB:N0} (now {e.WorkerRssAfterMiB:N0})" : "-");
        }
    }

    private static string Rate(double value) => double.IsFinite(value) && value > 0 ? value.ToString("N0", CultureInfo.InvariantCulture) : "-";

    private static string Provider(string? provider) => provider?.Replace("ExecutionProvider", "", StringComparison.Ordinal) ?? "?";

    private static string Target(WorkloadResult w, string prefix)
    {
        var target = w.Targets.FirstOrDefault(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (target is null)
        {
            return "n/a";
        }

        var actual = target.Name.StartsWith("worker", StringComparison.Ordinal) ? $"{target.Actual:N0} MiB" : $"{target.Actual:F2}×";
        return $"{(target.Met ? "MET" : "MISSED")} ({actual})";
    }
}
