using System.Diagnostics;
using System.Text.Json;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Drift;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application.Drift;

/// <summary>
/// One audit: each profiled column compared with the samples of the window, the verdict (<see cref="DriftVerdicts"/>)
/// and what was published. <paramref name="FireId"/>: the scheduled fire that ran it (null for manual audits).
/// </summary>
public sealed record DriftReport(
    Guid Id,
    string Model,
    int Version,
    string Trigger,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    long Rows,
    bool Drifted,
    bool EventsPublished,
    bool RetrainingRequested,
    IReadOnlyList<ColumnDrift> Columns,
    DateTimeOffset CreatedAt,
    string Verdict,
    string? FireId = null);

/// <summary>What an audit concluded.</summary>
public static class DriftVerdicts
{
    /// <summary>At least one column drifted.</summary>
    public const string Drift = "drift";

    /// <summary>Columns were judged and none drifted.</summary>
    public const string NoDrift = "no_drift";

    /// <summary>
    /// Fewer than <see cref="DriftOptions.MinimumRows"/> sampled rows (or no column with that many values): nothing was
    /// judged, no event is published, and the report neither extends nor breaks a streak of drifted audits.
    /// </summary>
    public const string InsufficientData = "insufficient_data";
}

/// <summary>
/// Compares a model version's recent samples (<c>scoring.drift_samples</c>, the last <see cref="DriftOptions.WindowHours"/>)
/// with its reference profile: PSI for every column, Kolmogorov–Smirnov for numeric ones, chi-square for categorical
/// ones (rules in <see cref="DriftThresholds"/>). Every audit stores a report; a drifted one publishes
/// <see cref="DriftDetected"/> (and POSTs it to the webhook, when set) unless one was published for the same version
/// within the cooldown, and <see cref="RetrainingRequested"/> once the last <see cref="DriftOptions.RetrainAfterDriftedAudits"/>
/// audits all drifted, again at most once per cooldown.
/// </summary>
public sealed class DriftAuditor(
    ModelStore store,
    DriftStore drift,
    ReferenceProfiler profiles,
    IBus bus,
    IDriftWebhook webhook,
    IOptions<DriftOptions> options,
    ILogger<DriftAuditor> logger)
{
    public const string ScheduleTrigger = "schedule";
    public const string ManualTrigger = "manual";

    // Per model version, not per column: alert on these; the report names the columns.
    /// <param name="model">Model name.</param>
    /// <param name="versionOrAlias">Version number or alias; null = latest.</param>
    /// <param name="trigger"><see cref="ScheduleTrigger"/> or <see cref="ManualTrigger"/>.</param>
    /// <param name="windowHours">Hours of samples to compare (default <see cref="DriftOptions.WindowHours"/>).</param>
    /// <param name="cancellationToken">Cancels the audit.</param>
    /// <param name="fireId">The scheduled fire running this audit: a fire stores one report per model version, so a
    /// fire recovered after a crash returns the report stored before it instead of auditing again.</param>
    public async Task<DriftReport> AuditAsync(
        string model, string? versionOrAlias, string trigger, CancellationToken cancellationToken, int? windowHours = null, string? fireId = null)
    {
        if (windowHours is < 1 or > 24 * 366)
        {
            throw new DriftProfileException($"windowHours must be between 1 and {24 * 366} (was {windowHours}).");
        }

        var version = await store.ResolveModelAsync(model, versionOrAlias, cancellationToken)
            ?? throw new DriftProfileException(ModelRegistry.NotFound(model, versionOrAlias));
        var profile = await profiles.GetAsync(version.ModelName, version.Version, cancellationToken)
            ?? throw new DriftProfileException(
                $"Model '{version.ModelName}' v{version.Version} has no reference profile: build one with "
                + $"`batchscore models profile --name {version.ModelName} --version {version.Version} --input <reference data>` (POST /api/models/{version.ModelName}/profile).");

        if (fireId is not null && await drift.GetFireReportAsync(fireId, version.ModelName, version.Version, cancellationToken) is { } earlier)
        {
            logger.AlreadyAudited(version.ModelName, version.Version, fireId, earlier.Id);
            return FromStored(earlier);
        }

        var settings = options.Value;
        var end = DateTimeOffset.UtcNow;
        var start = end.AddHours(-(windowHours ?? settings.WindowHours));
        var columns = profile.Features.Concat(profile.Predictions).ToList();
        var accumulators = columns.ToDictionary(c => c.Name, c => new ColumnDriftAccumulator(c), StringComparer.Ordinal);
        long rows = 0;
        await foreach (var sample in drift.ReadSamplesAsync(version.ModelName, version.Version, start, settings.MaxAuditRows, cancellationToken))
        {
            rows += Feed(sample, accumulators);
        }

        var thresholds = new DriftThresholds
        {
            Psi = settings.PsiThreshold,
            PValue = settings.CorrectPValuesForColumns ? settings.PValueThreshold / Math.Max(1, columns.Count) : settings.PValueThreshold,
            KsStatistic = settings.KsThreshold,
            MinimumSampleRows = settings.MinimumRows,
        };
        var results = columns.Select(c => accumulators[c.Name].Compare(thresholds)).ToList();
        var drifted = results.Any(r => r.Drifted);
        var judged = rows >= settings.MinimumRows && columns.Any(c => c.Proportions.Length > 0 && accumulators[c.Name].Rows >= settings.MinimumRows);
        var verdict = drifted ? DriftVerdicts.Drift : judged ? DriftVerdicts.NoDrift : DriftVerdicts.InsufficientData;
        if (verdict != DriftVerdicts.InsufficientData)
        {
            // The gauges describe the latest judged audit: a quiet hour with few samples does not reset an alert.
            var versionLabel = version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var tags = new TagList { { "model", version.ModelName }, { "version", versionLabel } };
            ScoringMetrics.DriftedColumns.Record(results.Count(r => r.Drifted), tags);
            ScoringMetrics.DriftMaxPsi.Record(results.Count == 0 ? 0 : results.Max(r => r.Psi), tags);
        }

        ScoringMetrics.DriftAudits.Add(1, new TagList { { "trigger", trigger }, { "result", verdict } });
        var report = new DriftReport(Guid.CreateVersion7(), version.ModelName, version.Version, trigger, start, end, rows, drifted, false, false, results, end, verdict, fireId);
        if (!await drift.InsertReportAsync(ToStored(report), cancellationToken))
        {
            // Another run of the same fire stored its report between the check above and this insert.
            return FromStored((await drift.GetFireReportAsync(fireId!, version.ModelName, version.Version, cancellationToken))!);
        }

        if (drifted)
        {
            var cooldownStart = end.AddHours(-settings.CooldownHours);
            var (detectedAt, retrainingAt) = await drift.LastEventsPublishedAtAsync(version.ModelName, version.Version, cancellationToken);
            var streak = await drift.DriftedStreakAsync(version.ModelName, version.Version, settings.RetrainAfterDriftedAudits, cancellationToken);
            var detect = detectedAt is not { } d || d <= cooldownStart;
            var retrain = streak >= settings.RetrainAfterDriftedAudits && (retrainingAt is not { } r || r <= cooldownStart);
            if (detect || retrain)
            {
                var (detected, retrained) = await PublishAsync(report, detect, retrain, cancellationToken);
                report = report with { EventsPublished = detected, RetrainingRequested = retrained };
            }

            logger.DriftEvents(
                report.Model, report.Version, report.Id, streak, Outcome(detect, report.EventsPublished, "within the cooldown"),
                Outcome(retrain, report.RetrainingRequested, streak < settings.RetrainAfterDriftedAudits ? $"waits for {settings.RetrainAfterDriftedAudits} drifted audits" : "within the cooldown"));
        }

        logger.Audited(
            report.Model, report.Version, report.Id, rows,
            verdict switch
            {
                DriftVerdicts.Drift => "drifted (" + string.Join("; ", results.Where(r => r.Drifted).Select(r => $"{r.Name}: {r.Reason}")) + ")",
                DriftVerdicts.NoDrift => "no drift",
                _ => $"insufficient data (fewer than {settings.MinimumRows} sampled rows to judge)",
            });
        return report;
    }

    /// <summary>
    /// The scheduled run: drops samples past their retention, then audits every profiled version with samples in the
    /// window, one report per version per <paramref name="fireId"/> (a recovered fire audits only what is left).
    /// </summary>
    public async Task<IReadOnlyList<DriftReport>> AuditAllAsync(string fireId, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var deleted = await drift.DeleteSamplesBeforeAsync(DateTimeOffset.UtcNow.AddDays(-settings.RetentionDays), cancellationToken);
        if (deleted > 0)
        {
            logger.SamplesDeleted(deleted, settings.RetentionDays);
        }

        var reports = new List<DriftReport>();
        foreach (var (model, version) in await drift.ProfiledVersionsWithSamplesAsync(DateTimeOffset.UtcNow.AddHours(-settings.WindowHours), cancellationToken))
        {
            try
            {
                reports.Add(await AuditAsync(model, version.ToString(System.Globalization.CultureInfo.InvariantCulture), ScheduleTrigger, cancellationToken, fireId: fireId));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One model's failure must not stop the audits of the others.
                logger.AuditFailed(ex, model, version);
            }
        }

        return reports;
    }

    public async Task<IReadOnlyList<DriftReport>> ListAsync(string model, int? version, int limit, CancellationToken cancellationToken) =>
        (await drift.ListReportsAsync(model, version, limit, cancellationToken)).Select(FromStored).ToList();

    /// <summary>
    /// Publishes the report's events and records which went out. One the broker does not confirm
    /// (<see cref="BoundedPublish"/>) stays unrecorded, so the next drifted audit publishes it (the cooldown counts
    /// published events).
    /// </summary>
    private async Task<(bool Detected, bool Retrained)> PublishAsync(DriftReport report, bool detect, bool retrain, CancellationToken cancellationToken)
    {
        var psi = report.Columns.ToDictionary(c => c.Name, c => c.Psi, StringComparer.Ordinal);
        var driftedColumns = report.Columns.Where(c => c.Drifted).ToDictionary(c => c.Name, c => c.Reason ?? "drifted", StringComparer.Ordinal);
        var id = report.Id.ToString();
        var detected = new DriftDetected(report.Model, report.Version, id, psi, driftedColumns, report.CreatedAt);
        var notSent = detect ? await bus.TryPublishAsync(detected, cancellationToken) : null;
        var detectSent = detect && notSent is null;
        var retrainSent = false;
        if (retrain && notSent is null)
        {
            notSent = await bus.TryPublishAsync(new RetrainingRequested(report.Model, report.Version, id, psi, driftedColumns, report.CreatedAt), cancellationToken);
            retrainSent = notSent is null;
            if (retrainSent)
            {
                OperationsMetrics.RetrainingPublished(RetrainingReasons.Drift);
            }
        }

        if (notSent is not null)
        {
            logger.LogWarning(
                "Model {Model} v{Version}: the events of drift report {Report} were not published ({Error}); the next drifted audit publishes them",
                report.Model, report.Version, report.Id, notSent);
        }

        if (detectSent || retrainSent)
        {
            await drift.MarkEventsPublishedAsync(report.Id, detectSent, retrainSent, CancellationToken.None);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (detectSent)
        {
            await webhook.SendAsync(detected, cancellationToken);
        }

        return (detectSent, retrainSent);
    }

    private static string Outcome(bool due, bool published, string notDue) =>
        !due ? notDue : published ? "published" : "not published (RabbitMQ unreachable; the next drifted audit publishes it)";

    /// <summary>Adds one sample document's values to the accumulators of the columns it has; returns its row count.</summary>
    private static int Feed(string sample, Dictionary<string, ColumnDriftAccumulator> accumulators)
    {
        using var document = JsonDocument.Parse(sample);
        var rows = 0;
        foreach (var column in document.RootElement.EnumerateObject())
        {
            if (!accumulators.TryGetValue(column.Name, out var accumulator) || column.Value.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            rows = Math.Max(rows, column.Value.GetArrayLength());
            foreach (var value in column.Value.EnumerateArray())
            {
                switch (value.ValueKind)
                {
                    case JsonValueKind.Number:
                        accumulator.Add(value.GetDouble());
                        break;
                    case JsonValueKind.String when accumulator.Kind == ProfileColumnKind.Categorical:
                        accumulator.Add(value.GetString());
                        break;
                    default:
                        accumulator.AddMissing();
                        break;
                }
            }
        }

        return rows;
    }

    private static StoredDriftReport ToStored(DriftReport report) => new(
        report.Id, report.Model, report.Version, report.Trigger, report.WindowStart, report.WindowEnd, report.Rows, report.Drifted,
        report.EventsPublished, report.RetrainingRequested, JsonSerializer.Serialize(report.Columns, ReferenceProfiler.Json), report.CreatedAt,
        report.Verdict, report.FireId);

    private static DriftReport FromStored(StoredDriftReport stored) => new(
        stored.Id, stored.ModelName, stored.ModelVersion, stored.Trigger, stored.WindowStart, stored.WindowEnd, stored.RowCount, stored.Drifted,
        stored.EventsPublished, stored.RetrainingRequested, JsonSerializer.Deserialize<List<ColumnDrift>>(stored.ColumnsJson, ReferenceProfiler.Json) ?? [], stored.CreatedAt,
        stored.Verdict, stored.FireId);
}
