using System.Globalization;
using System.Text.Json.Serialization;

namespace BatchScoring.Scoring.Drift;

/// <summary>
/// How a column is profiled for drift: numeric columns by bins and quantiles (PSI, Kolmogorov–Smirnov),
/// categorical ones by category frequencies (PSI, chi-square). Not the physical type of a batch column.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<ProfileColumnKind>))]
public enum ProfileColumnKind
{
    Numeric,
    Categorical,
}

/// <summary>
/// The stored reference distribution of one column, compact enough to keep per model version and compare any
/// later window against without the reference data. Built by <see cref="ColumnProfileBuilder"/>.
/// </summary>
/// <remarks>
/// Numeric bin i holds the values v with Edges[i-1] &lt; v &lt;= Edges[i] (the first bin v &lt;= Edges[0], the last
/// v &gt; Edges[^1]). Categorical bin i is Categories[i]; the last bin is "other" (anything not listed).
/// A column that had no non-missing values has empty arrays: there is nothing to compare it against.
/// Fields that do not apply to the kind are empty arrays, never null.
/// </remarks>
public sealed record ColumnProfile
{
    /// <summary>Categories kept per column; the rest share the "other" bin so profiles stay small.</summary>
    public const int MaxCategories = 50;

    /// <summary>Number of reference quantiles (0th..100th percentile) kept for the Kolmogorov–Smirnov test.</summary>
    public const int QuantileCount = 101;

    public required string Name { get; init; }

    public required ProfileColumnKind Kind { get; init; }

    /// <summary>Non-missing values seen, all of them (not only the sample the numeric fields come from).</summary>
    public long Count { get; init; }

    /// <summary>Values that were null, NaN or empty.</summary>
    public long Missing { get; init; }

    /// <summary>Numeric: inner bin edges, strictly increasing (reference deciles with ties removed, at most 9).</summary>
    public double[] Edges { get; init; } = [];

    /// <summary>Numeric: the 0th..100th percentiles of the reference, so the reference CDF can be rebuilt for KS.</summary>
    public double[] Quantiles { get; init; } = [];

    /// <summary>Categorical: the most frequent categories (at most <see cref="MaxCategories"/>), most frequent first.</summary>
    public string[] Categories { get; init; } = [];

    /// <summary>
    /// Share of the non-missing reference values in each bin (numeric: Edges.Length + 1 bins; categorical:
    /// Categories.Length + 1 with "other" last); sums to 1.
    /// </summary>
    public double[] Proportions { get; init; } = [];

    /// <summary>The bin a numeric value falls in; the same rule for profiling and comparison keeps them consistent.</summary>
    public int BinOf(double value)
    {
        if (Kind != ProfileColumnKind.Numeric)
        {
            throw new InvalidOperationException($"Column '{Name}' is {Kind}; numeric values have no bin.");
        }

        if (double.IsNaN(value))
        {
            throw new ArgumentException("NaN is a missing value and has no bin.", nameof(value));
        }

        // Edges are strictly increasing: an exact hit is bin i (v <= Edges[i]), otherwise the next larger edge's index.
        var index = Array.BinarySearch(Edges, value);
        return index >= 0 ? index : ~index;
    }

    /// <summary>The bin of a category: its index in <see cref="Categories"/>, or the last ("other") bin when not listed.</summary>
    public int BinOf(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (Kind != ProfileColumnKind.Categorical)
        {
            throw new InvalidOperationException($"Column '{Name}' is {Kind}; categories have no bin.");
        }

        var index = Array.IndexOf(Categories, value);
        return index >= 0 ? index : Categories.Length;
    }

    /// <summary>
    /// The category a number stands for (integer codes, booleans as 0/1), written the same way everywhere so a
    /// numeric categorical column profiles and compares consistently.
    /// </summary>
    internal static string CategoryText(double value) => value.ToString(CultureInfo.InvariantCulture);
}
