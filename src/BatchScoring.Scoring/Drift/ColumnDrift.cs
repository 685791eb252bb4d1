namespace BatchScoring.Scoring.Drift;

/// <summary>
/// When a column counts as drifted. A column with fewer than <see cref="MinimumSampleRows"/> non-missing current
/// values is not judged. Otherwise it has drifted when the shift is both material and significant: PSI ≥
/// <see cref="Psi"/> with a chi-square p-value (over the same bins) below <see cref="PValue"/>; or, for numeric
/// columns, KS D ≥ <see cref="KsStatistic"/> with a KS p-value below <see cref="PValue"/>; or, for categorical ones,
/// PSI ≥ <see cref="Psi"/> / 2 with a chi-square p-value below <see cref="PValue"/>. Large windows make tiny
/// differences "significant", so a p-value alone never flags drift; small windows make PSI noisy (about
/// (bins − 1) / rows when nothing changed), so PSI alone does not either, and the false-alarm rate stays at most
/// <see cref="PValue"/> per column at any window size.
/// </summary>
public sealed record DriftThresholds
{
    public static DriftThresholds Default { get; } = new();

    /// <summary>Common practice: PSI &lt; 0.1 stable, 0.1–0.2 moderate shift, ≥ 0.2 significant shift.</summary>
    public double Psi { get; init; } = 0.2;

    /// <summary>Significance level of the KS and chi-square tests.</summary>
    public double PValue { get; init; } = 0.01;

    /// <summary>Smallest KS distance (largest CDF gap) that matters: 10 percentage points of the distribution.</summary>
    public double KsStatistic { get; init; } = 0.1;

    /// <summary>Below this many non-missing current values the statistics are too noisy to judge.</summary>
    public int MinimumSampleRows { get; init; } = 100;
}

/// <summary>
/// Drift verdict for one column. <paramref name="Rows"/> counts the non-missing current values; the KS fields are set
/// for numeric columns (null when there was nothing to test); the chi-square ones compare the counts over the PSI bins
/// (categories, or the reference deciles of a numeric column).
/// <paramref name="Reason"/> names the rule that fired with its numbers, or why the column was not judged;
/// it is null for a column judged stable.
/// </summary>
public sealed record ColumnDrift(
    string Name,
    ProfileColumnKind Kind,
    long Rows,
    long Missing,
    double Psi,
    double? KsStatistic,
    double? KsPValue,
    double? ChiSquare,
    double? ChiSquarePValue,
    bool Drifted,
    string? Reason);
