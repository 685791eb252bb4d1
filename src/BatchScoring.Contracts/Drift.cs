namespace BatchScoring.Contracts;

/// <summary>
/// Published (exchange <c>BatchScoring.Contracts:DriftDetected</c>) when a drift audit finds that a model version's
/// recent inputs or predictions crossed the drift thresholds against its reference profile; at most once per cooldown.
/// </summary>
/// <param name="Model">The model name.</param>
/// <param name="Version">The model version audited.</param>
/// <param name="ReportId">Id of the stored report (<c>scoring.drift_reports</c>, <c>GET /api/models/{name}/drift</c>).</param>
/// <param name="Psi">Population stability index per column (input features and prediction columns).</param>
/// <param name="DriftedColumns">The columns that crossed a threshold, with the rule that fired.</param>
/// <param name="DetectedAt">When the audit ran.</param>
public sealed record DriftDetected(
    string Model, int Version, string ReportId, IReadOnlyDictionary<string, double> Psi, IReadOnlyDictionary<string, string> DriftedColumns, DateTimeOffset DetectedAt);

/// <summary>
/// Asks a training pipeline to retrain a model version, at most once per cooldown (<c>BatchScoring:Drift:CooldownHours</c>)
/// whatever the reason: published with <see cref="DriftDetected"/> (<see cref="Reason"/> <c>drift</c>; <see cref="ReportId"/>
/// a drift report), or when realised performance dropped against the version's baseline (<c>performance</c>;
/// <see cref="ReportId"/> a performance report, <see cref="Evidence"/> the metrics that dropped, <see cref="Psi"/> and
/// <see cref="DriftedColumns"/> empty).
/// </summary>
public sealed record RetrainingRequested(
    string Model, int Version, string ReportId, IReadOnlyDictionary<string, double> Psi, IReadOnlyDictionary<string, string> DriftedColumns, DateTimeOffset DetectedAt,
    string Reason = RetrainingReasons.Drift, IReadOnlyList<PerformanceDrop>? Evidence = null);

/// <summary>Values of <see cref="RetrainingRequested.Reason"/>.</summary>
public static class RetrainingReasons
{
    public const string Drift = "drift";

    public const string Performance = "performance";
}

/// <summary>
/// A realised metric past its allowed drop: <paramref name="Baseline"/> from report <paramref name="BaselineReportId"/> (the
/// version's first report with enough labels), <paramref name="Current"/> over scored rows of [<paramref name="WindowStart"/>,
/// <paramref name="WindowEnd"/>). <paramref name="Drop"/>: how much worse (an absolute drop for accuracy-like metrics, a
/// relative increase for errors such as RMSE and log loss).
/// </summary>
public sealed record PerformanceDrop(
    string Metric, double Baseline, double Current, double Drop, double Threshold, string BaselineReportId, DateTimeOffset WindowStart, DateTimeOffset WindowEnd);
