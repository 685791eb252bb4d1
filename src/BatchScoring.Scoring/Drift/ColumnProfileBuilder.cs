using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BatchScoring.Scoring.Drift;

/// <summary>
/// Builds a <see cref="ColumnProfile"/> from a stream of values in bounded memory, so a reference data set of any
/// size can be profiled in one pass.
/// </summary>
/// <remarks>
/// Numeric: a seeded reservoir sample of at most <c>sampleSize</c> values gives the quantiles, deciles and bin
/// proportions. Categorical: exact counts, but only the first <see cref="MaxTrackedCategories"/> distinct categories
/// are tracked; categories first seen after that count towards "other" (a high-cardinality column is not a
/// categorical feature worth profiling by name). A column with no non-missing values builds a profile with empty
/// arrays.
/// </remarks>
public sealed class ColumnProfileBuilder
{
    /// <summary>Distinct categories tracked by name; bounds memory on id-like columns.</summary>
    public const int MaxTrackedCategories = 10_000;

    private readonly Reservoir? _sample;
    private readonly Dictionary<string, long>? _categories;
    private long _untrackedCategories;

    public ColumnProfileBuilder(string name, ProfileColumnKind kind, int sampleSize = 100_000, int seed = 17)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleSize, 1);
        Name = name;
        Kind = kind;
        if (kind == ProfileColumnKind.Numeric)
        {
            _sample = new Reservoir(sampleSize, seed);
        }
        else if (kind == ProfileColumnKind.Categorical)
        {
            _categories = new Dictionary<string, long>(StringComparer.Ordinal);
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    public string Name { get; }

    public ProfileColumnKind Kind { get; }

    /// <summary>Non-missing values added so far.</summary>
    public long Count { get; private set; }

    public long Missing { get; private set; }

    /// <summary>Adds a number; NaN is missing. On a categorical column the number is a category code (its invariant text).</summary>
    public void Add(double value)
    {
        if (double.IsNaN(value))
        {
            Missing++;
            return;
        }

        if (_sample is null)
        {
            Add(ColumnProfile.CategoryText(value));
            return;
        }

        Count++;
        _sample.Add(value);
    }

    /// <summary>Adds a category; null or empty is missing. Numeric columns take numbers only.</summary>
    public void Add(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            Missing++;
            return;
        }

        if (_categories is null)
        {
            throw new InvalidOperationException($"Column '{Name}' is numeric; add numbers, not text.");
        }

        Count++;
        ref var count = ref CollectionsMarshal.GetValueRefOrNullRef(_categories, value);
        if (!Unsafe.IsNullRef(ref count))
        {
            count++;
        }
        else if (_categories.Count < MaxTrackedCategories)
        {
            _categories.Add(value, 1);
        }
        else
        {
            _untrackedCategories++;
        }
    }

    public void AddMissing() => Missing++;

    /// <summary>The profile of everything added so far; the builder can keep taking values afterwards.</summary>
    public ColumnProfile Build()
    {
        if (Count == 0)
        {
            return new ColumnProfile { Name = Name, Kind = Kind, Count = 0, Missing = Missing };
        }

        return _sample is not null ? BuildNumeric(_sample) : BuildCategorical(_categories!);
    }

    private ColumnProfile BuildNumeric(Reservoir sample)
    {
        var sorted = sample.SortedCopy();
        var quantiles = new double[ColumnProfile.QuantileCount];
        for (var percent = 0; percent < quantiles.Length; percent++)
        {
            quantiles[percent] = Quantile(sorted, percent / 100.0);
        }

        // Deciles 10..90 as inner edges; equal deciles (a value that fills several deciles) collapse into one edge.
        var edges = new List<double>(9);
        for (var percent = 10; percent <= 90; percent += 10)
        {
            if (edges.Count == 0 || quantiles[percent] > edges[^1])
            {
                edges.Add(quantiles[percent]);
            }
        }

        var profile = new ColumnProfile
        {
            Name = Name,
            Kind = Kind,
            Count = Count,
            Missing = Missing,
            Edges = [.. edges],
            Quantiles = quantiles,
        };
        var counts = new long[edges.Count + 1];
        foreach (var value in sorted)
        {
            counts[profile.BinOf(value)]++;
        }

        return profile with { Proportions = Shares(counts, sorted.Length) };
    }

    private ColumnProfile BuildCategorical(Dictionary<string, long> categories)
    {
        var top = categories
            .OrderByDescending(pair => pair.Value)
            .ThenBy(pair => pair.Key, StringComparer.Ordinal)
            .Take(ColumnProfile.MaxCategories)
            .ToArray();
        var counts = new long[top.Length + 1];
        long listed = 0;
        for (var i = 0; i < top.Length; i++)
        {
            counts[i] = top[i].Value;
            listed += top[i].Value;
        }

        // "Other" is whatever the listed categories do not cover, untracked ones included.
        counts[^1] = Count - listed;
        return new ColumnProfile
        {
            Name = Name,
            Kind = Kind,
            Count = Count,
            Missing = Missing,
            Categories = [.. top.Select(pair => pair.Key)],
            Proportions = Shares(counts, Count),
        };
    }

    /// <summary>
    /// The q-quantile of sorted values by linear interpolation between closest ranks (Hyndman–Fan type 7, the
    /// default of R and NumPy). Infinite neighbours take the infinite value rather than produce NaN.
    /// </summary>
    internal static double Quantile(double[] sorted, double q)
    {
        var position = (sorted.Length - 1) * q;
        var lower = (int)Math.Floor(position);
        var upper = Math.Min(lower + 1, sorted.Length - 1);
        var fraction = position - lower;
        double low = sorted[lower], high = sorted[upper];
        if (fraction <= 0 || low == high)
        {
            return low;
        }

        if (double.IsFinite(low) && double.IsFinite(high))
        {
            return Math.Clamp(low + (fraction * (high - low)), low, high);
        }

        if (double.IsNegativeInfinity(low) && double.IsPositiveInfinity(high))
        {
            return fraction < 0.5 ? low : high;
        }

        return double.IsInfinity(low) ? low : high;
    }

    internal static double[] Shares(long[] counts, long total)
    {
        var shares = new double[counts.Length];
        for (var i = 0; i < counts.Length; i++)
        {
            shares[i] = (double)counts[i] / total;
        }

        return shares;
    }
}
