using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application.Performance;

/// <summary>
/// One performance report: a model version's scored rows in [<paramref name="WindowStart"/>, <paramref name="WindowEnd"/>)
/// joined to their labels. <paramref name="LabelCoverage"/> = labelled ÷ scored keys. <paramref name="BaselineReportId"/>:
/// the report compared with (null when this one is, or could not be, the baseline); <paramref name="Drops"/>: watched
/// metrics past their allowed drop.
/// </summary>
public sealed record PerformanceReport(
    Guid Id,
    string Model,
    int Version,
    string Trigger,
    string Task,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long ScoredRows,
    long LabelledRows,
    double? LabelCoverage,
    PerformanceMetrics Metrics,
    string? ScoreColumn,
    string? PositiveClass,
    Guid? BaselineReportId,
    IReadOnlyList<PerformanceDrop> Drops,
    bool RetrainingRequested,
    DateTimeOffset CreatedAt);

/// <summary>The model has no results table with a column the metrics can use: a 400 with this message.</summary>
public sealed class PerformanceReportException(string message) : Exception(message);

/// <summary>
/// Computes realised performance per model version (see docs/performance.md): finds the model's results tables from its
/// jobs, picks the score column, joins the latest score of each key in the window to its label, folds the rows into
/// metrics, stores the report, and compares it with the version's baseline (its first report with at least
/// <see cref="PerformanceOptions.MinimumLabelledRows"/> labels). A watched metric past its allowed drop publishes
/// <see cref="RetrainingRequested"/> (reason <c>performance</c>), at most once per drift cooldown per version.
/// </summary>
public sealed class PerformanceReporter(
    PerformanceStore store,
    LabelStore labels,
    IBus bus,
    IOptions<PerformanceOptions> options,
    IOptions<DriftOptions> drift,
    ILogger<PerformanceReporter> logger)
{
    public const string ScheduleTrigger = "schedule";
    public const string ManualTrigger = "manual";

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private static readonly Meter Meter = new("BatchScoring");

    private static readonly Gauge<double> MetricGauge = Meter.CreateGauge<double>(
        "batchscoring.performance.metric", description: "Latest realised metric of a model version (tags model, version, metric).");

    private static readonly Gauge<double> CoverageGauge = Meter.CreateGauge<double>(
        "batchscoring.performance.label_coverage", description: "Labelled ÷ scored keys in the latest performance report of a model version.");

    private static readonly HashSet<string> NumericTypes = new(StringComparer.Ordinal) { "real", "double precision", "integer", "bigint", "smallint", "numeric" };

    /// <summary>Reports of every version of <paramref name="model"/> with scored rows in the window (or of <paramref name="version"/> only).</summary>
    public async Task<IReadOnlyList<PerformanceReport>> ReportAsync(
        string model, int? version, TimeSpan? window, string trigger, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var modelSettings = settings.Models.GetValueOrDefault(model) ?? new ModelPerformanceSettings();
        var end = DateTimeOffset.UtcNow;
        var start = end - (window ?? TimeSpan.FromHours(settings.WindowHours));
        var tables = await store.ScoredTablesAsync(model, cancellationToken);
        if (tables.Count == 0)
        {
            return [];
        }

        var (sources, positiveClass, classes) = ChooseSources(model, tables, modelSettings);
        var reports = new List<PerformanceReport>();
        foreach (var counts in await store.CountAsync(model, sources, start, end, cancellationToken))
        {
            if (version is { } only && counts.Version != only)
            {
                continue;
            }

            var task = modelSettings.Task
                ?? (classes ? PerformanceTasks.Binary
                    : counts.Labelled == 0 ? PerformanceTasks.Unsupported
                    : counts.LabelsAreZeroOrOne && counts.ScoresAreProbabilities ? PerformanceTasks.Binary
                    : PerformanceTasks.Regression);
            var positive = task == PerformanceTasks.Binary ? positiveClass ?? "1" : null;
            var metrics = task switch
            {
                PerformanceTasks.Binary => await BinaryAsync(model, counts.Version, sources, start, end, positive!, cancellationToken),
                PerformanceTasks.Regression => await RegressionAsync(model, counts.Version, sources, start, end, cancellationToken),
                _ => new PerformanceMetrics(),
            };
            var report = new PerformanceReport(
                Guid.CreateVersion7(), model, counts.Version, trigger, task, start, end, counts.Scored, counts.Labelled,
                counts.Scored == 0 ? null : (double)counts.Labelled / counts.Scored, metrics,
                string.Join(",", sources.Select(s => s.ScoreColumn).Distinct()), positive, null, [], false, end);
            reports.Add(await StoreAndCompareAsync(report, cancellationToken));
        }

        return reports;
    }

    /// <summary>The scheduled run: every model with labels, every version scored in the window; one failure does not stop the others.</summary>
    public async Task<IReadOnlyList<PerformanceReport>> ReportAllAsync(CancellationToken cancellationToken)
    {
        var reports = new List<PerformanceReport>();
        foreach (var model in await labels.LabelledModelsAsync(cancellationToken))
        {
            try
            {
                reports.AddRange(await ReportAsync(model, null, null, ScheduleTrigger, cancellationToken));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Performance report of {Model} failed", model);
            }
        }

        return reports;
    }

    public async Task<IReadOnlyList<PerformanceReport>> ListAsync(string model, int? version, int limit, CancellationToken cancellationToken) =>
        (await store.ListAsync(model, version, limit, cancellationToken)).Select(FromStored).ToList();

    /// <summary>
    /// Which column of which table is the score. A table with exactly two <c>probability_&lt;class&gt;</c> columns is a
    /// binary classifier: the score is the positive class's probability (the configured class, else 1 / true / yes, else
    /// the second class in ordinal order). Otherwise the configured <c>ScoreColumn</c>, or the table's only numeric output.
    /// Tables that disagree with the first usable one (another kind or class) are left out.
    /// </summary>
    private (IReadOnlyList<ScoreSource> Sources, string? PositiveClass, bool Classes) ChooseSources(
        string model, IReadOnlyList<ScoredTable> tables, ModelPerformanceSettings settings)
    {
        var sources = new List<ScoreSource>();
        string? positive = null;
        bool? classes = null;
        foreach (var table in tables)
        {
            var outputs = table.Columns
                .Where(c => c.Name != table.KeyColumn && !ResultTable.FixedColumns.Contains(c.Name) && !table.Passthrough.Contains(c.Name) && NumericTypes.Contains(c.DataType))
                .Select(c => c.Name).ToList();
            var probabilities = outputs.Where(c => c.StartsWith("probability_", StringComparison.Ordinal)).ToList();
            string? column = null;
            string? tablePositive = null;
            var tableClasses = false;
            if (settings.ScoreColumn is { } configured)
            {
                column = outputs.Contains(configured) ? configured : null;
            }
            else if (probabilities.Count == 2)
            {
                var names = probabilities.Select(p => p["probability_".Length..]).Order(StringComparer.Ordinal).ToList();
                tablePositive = settings.PositiveClass is { } p && names.Contains(p) ? p
                    : names.FirstOrDefault(n => n.ToLowerInvariant() is "1" or "true" or "yes") ?? names[1];
                column = "probability_" + tablePositive;
                tableClasses = true;
            }
            else if (probabilities.Count == 0 && outputs.Count == 1)
            {
                column = outputs[0];
                tablePositive = settings.PositiveClass;
            }

            if (column is null || (classes is { } kind && (kind != tableClasses || positive != tablePositive)))
            {
                logger.LogInformation("Performance of {Model}: results table {Schema}.{Table} left out (no single score column, or another kind than the first table)", model, table.Schema, table.Table);
                continue;
            }

            classes = tableClasses;
            positive = tablePositive;
            sources.Add(new ScoreSource(table, column));
        }

        return sources.Count > 0
            ? (sources, positive, classes!.Value)
            : throw new PerformanceReportException(
                $"Model '{model}': no results table of its jobs has a score column to judge (two probability_<class> columns, or one numeric output); "
                + $"set {PerformanceOptions.SectionName}:Models:{model}:ScoreColumn.");
    }

    private async Task<PerformanceMetrics> BinaryAsync(
        string model, int version, IReadOnlyList<ScoreSource> sources, DateTimeOffset start, DateTimeOffset end, string positive, CancellationToken cancellationToken)
    {
        var threshold = options.Value.Threshold;
        var positiveNumber = double.TryParse(positive, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? n : (double?)null;
        var accumulator = new BinaryMetricsAccumulator(threshold);
        await foreach (var row in store.ReadLabelledAsync(model, version, sources, start, end, cancellationToken))
        {
            accumulator.Add(row.Score, row.Label == positive || (positiveNumber is { } p && row.LabelNumber == p));
        }

        return accumulator.Result();
    }

    private async Task<PerformanceMetrics> RegressionAsync(
        string model, int version, IReadOnlyList<ScoreSource> sources, DateTimeOffset start, DateTimeOffset end, CancellationToken cancellationToken)
    {
        var accumulator = new RegressionMetricsAccumulator();
        await foreach (var row in store.ReadLabelledAsync(model, version, sources, start, end, cancellationToken))
        {
            if (row.LabelNumber is { } label)
            {
                accumulator.Add(row.Score, label);
            }
        }

        return accumulator.Result();
    }

    private async Task<PerformanceReport> StoreAndCompareAsync(PerformanceReport report, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var judged = report.Task != PerformanceTasks.Unsupported && report.LabelledRows >= settings.MinimumLabelledRows;
        var baseline = judged ? await store.BaselineAsync(report.Model, report.Version, settings.MinimumLabelledRows, cancellationToken) : null;
        if (baseline is not null && baseline.Task == report.Task)
        {
            var before = JsonSerializer.Deserialize<PerformanceMetrics>(baseline.MetricsJson, Json)!;
            report = report with { BaselineReportId = baseline.Id, Drops = Drops(report, baseline.Id, before) };
        }

        await store.InsertAsync(ToStored(report), cancellationToken);
        Record(report);
        if (report.Drops.Count > 0)
        {
            var cooldownStart = report.CreatedAt.AddHours(-drift.Value.CooldownHours);
            if (await store.ClaimRetrainingAsync(report.Id, report.Model, report.Version, cooldownStart, cancellationToken))
            {
                // The claim (one request per cooldown, across reporters) goes back when the broker does not take the
                // event, so the next report that still sees the drop requests retraining again.
                if (await TryPublishRetrainingAsync(report, cancellationToken))
                {
                    OperationsMetrics.RetrainingPublished(RetrainingReasons.Performance);
                    report = report with { RetrainingRequested = true };
                }
                else
                {
                    await store.ReleaseRetrainingAsync(report.Id, CancellationToken.None);
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            logger.LogInformation(
                "Model {Model} v{Version}: performance dropped ({Drops}) against report {Baseline}: RetrainingRequested {Outcome}",
                report.Model, report.Version, string.Join("; ", report.Drops.Select(d => $"{d.Metric} {d.Baseline:G4} → {d.Current:G4}")), report.BaselineReportId,
                report.RetrainingRequested ? "published" : "within the cooldown");
        }

        return report;
    }

    /// <summary>Publishes the report's <see cref="RetrainingRequested"/>; false when the broker did not confirm it (<see cref="BoundedPublish"/>).</summary>
    private async Task<bool> TryPublishRetrainingAsync(PerformanceReport report, CancellationToken cancellationToken)
    {
        var notSent = await bus.TryPublishAsync(
            new RetrainingRequested(
                report.Model, report.Version, report.Id.ToString(), new Dictionary<string, double>(), new Dictionary<string, string>(), report.CreatedAt,
                RetrainingReasons.Performance, report.Drops),
            cancellationToken);
        if (notSent is not null)
        {
            logger.LogWarning(
                "Model {Model} v{Version}: RetrainingRequested for report {Report} was not published ({Error}); the next report that sees the drop requests it again",
                report.Model, report.Version, report.Id, notSent);
        }

        return notSent is null;
    }

    private IReadOnlyList<PerformanceDrop> Drops(PerformanceReport report, Guid baselineId, PerformanceMetrics baseline)
    {
        var settings = options.Value;
        var drops = new List<PerformanceDrop>();
        foreach (var metric in settings.Watched)
        {
            if (baseline.Get(metric) is not { } before || report.Metrics.Get(metric) is not { } now)
            {
                continue;
            }

            var lower = MetricNames.LowerIsBetter(metric);
            var drop = lower ? (before == 0 ? (now > 0 ? double.PositiveInfinity : 0) : (now - before) / before) : before - now;
            var threshold = lower ? settings.MaxRelativeIncrease : settings.MaxDrop;
            if (drop >= threshold)
            {
                drops.Add(new PerformanceDrop(metric, before, now, drop, threshold, baselineId.ToString(), report.WindowStart, report.WindowEnd));
            }
        }

        return drops;
    }

    private static void Record(PerformanceReport report)
    {
        var tags = new KeyValuePair<string, object?>[] { new("model", report.Model), new("version", report.Version.ToString(CultureInfo.InvariantCulture)) };
        if (report.LabelCoverage is { } coverage)
        {
            CoverageGauge.Record(coverage, tags);
        }

        foreach (var metric in MetricNames.All)
        {
            if (report.Metrics.Get(metric) is { } value)
            {
                MetricGauge.Record(value, [.. tags, new("metric", metric)]);
            }
        }
    }

    private static StoredPerformanceReport ToStored(PerformanceReport r)
    {
        // Flat, so analysts can write metrics->>'rocAuc'; plus how the metrics were computed.
        var metrics = JsonSerializer.SerializeToNode(r.Metrics, Json)!.AsObject();
        metrics["scoreColumn"] = r.ScoreColumn;
        metrics["positiveClass"] = r.PositiveClass;
        return new(
            r.Id, r.Model, r.Version, r.Trigger, r.Task, r.WindowStart, r.WindowEnd, r.ScoredRows, r.LabelledRows,
            metrics.ToJsonString(Json), r.BaselineReportId, JsonSerializer.Serialize(r.Drops, Json), r.RetrainingRequested, r.CreatedAt);
    }

    private static PerformanceReport FromStored(StoredPerformanceReport s)
    {
        var metrics = JsonNode.Parse(s.MetricsJson)!.AsObject();
        return new PerformanceReport(
            s.Id, s.ModelName, s.ModelVersion, s.Trigger, s.Task, s.WindowStart, s.WindowEnd, s.ScoredRows, s.LabelledRows,
            s.ScoredRows == 0 ? null : (double)s.LabelledRows / s.ScoredRows, metrics.Deserialize<PerformanceMetrics>(Json)!,
            (string?)metrics["scoreColumn"], (string?)metrics["positiveClass"],
            s.BaselineReportId, JsonSerializer.Deserialize<List<PerformanceDrop>>(s.DropsJson, Json) ?? [], s.RetrainingRequested, s.CreatedAt);
    }
}
