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
/// it is null for a column judged stable. <paramref name="Histogram"/> and <paramref name="Thresholds"/> keep what the
/// verdict was drawn from so a stored report can be drawn on its own (null in reports stored before they were kept).
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
    string? Reason,
    DriftHistogram? Histogram = null,
    DriftThresholds? Thresholds = null);

/// <summary>
/// The reference and current shares per bin of one column (the PSI bins): <paramref name="Bins"/> names each bin
/// (numeric: its value range; categorical: the category, "other" last), both share arrays have one entry per bin.
/// </summary>
public sealed record DriftHistogram(IReadOnlyList<string> Bins, IReadOnlyList<double> Reference, IReadOnlyList<double> Current)
{
    /// <summary>Bin names of a profile: numeric ranges from the edges (Edges[i-1] &lt; v &lt;= Edges[i]), or the categories then "other".</summary>
    public static IReadOnlyList<string> BinNames(ColumnProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (profile.Kind == ProfileColumnKind.Categorical)
        {
            return [.. profile.Categories, "other"];
        }

        var edges = profile.Edges;
        if (edges.Length == 0)
        {
            return profile.Proportions.Length == 1 ? ["all"] : [];
        }

        var names = new List<string>(edges.Length + 1) { $"≤ {Number(edges[0])}" };
        for (var i = 1; i < edges.Length; i++)
        {
            names.Add($"({Number(edges[i - 1])}, {Number(edges[i])}]");
        }

        names.Add($"> {Number(edges[^1])}");
        return names;
    }

    private static string Number(double value) => value.ToString("G4", System.Globalization.CultureInfo.InvariantCulture);
}
