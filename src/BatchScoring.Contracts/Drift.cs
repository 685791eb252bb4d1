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

/// <summary>Published with <see cref="DriftDetected"/>, for a training pipeline to pick up.</summary>
public sealed record RetrainingRequested(
    string Model, int Version, string ReportId, IReadOnlyDictionary<string, double> Psi, IReadOnlyDictionary<string, string> DriftedColumns, DateTimeOffset DetectedAt);
