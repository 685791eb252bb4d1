namespace BatchScoring.Application.Challengers;

/// <summary>
/// A mergeable histogram of non-negative differences with logarithmic buckets (the DDSketch layout): bucket i holds
/// values in (γ^(i-1), γ^i] with γ = (1+α)/(1-α), so any quantile read from it is within <see cref="RelativeAccuracy"/>
/// of the exact one, whatever the number of rows, and chunks merge by adding counts. Values below
/// <see cref="ZeroThreshold"/> count as zero; the maximum is kept exactly.
/// </summary>
public sealed class ScoreDifferenceSketch
{
    public const double RelativeAccuracy = 0.005;

    public const double ZeroThreshold = 1e-9;

    private static readonly double Gamma = (1 + RelativeAccuracy) / (1 - RelativeAccuracy);
    private static readonly double LogGamma = Math.Log(Gamma);

    private readonly Dictionary<int, long> _buckets = [];

    public long Count { get; private set; }

    public long ZeroCount { get; private set; }

    /// <summary>The largest value added; null when empty.</summary>
    public double? Max { get; private set; }

    /// <summary>Adds |value|; NaN is ignored (a model that returned NaN has no difference to report).</summary>
    public void Add(double value)
    {
        if (double.IsNaN(value))
        {
            return;
        }

        value = Math.Abs(value);
        Count++;
        Max = Max is { } max ? Math.Max(max, value) : value;
        if (value < ZeroThreshold)
        {
            ZeroCount++;
            return;
        }

        var index = double.IsPositiveInfinity(value) ? int.MaxValue : (int)Math.Ceiling(Math.Log(value) / LogGamma);
        _buckets[index] = _buckets.GetValueOrDefault(index) + 1;
    }

    /// <summary>Adds another sketch's counts (as stored by <see cref="Buckets"/>).</summary>
    public void Merge(long zeroCount, IReadOnlyList<int> buckets, IReadOnlyList<long> counts, double? max)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        ArgumentNullException.ThrowIfNull(counts);
        if (buckets.Count != counts.Count)
        {
            throw new ArgumentException($"{buckets.Count} buckets but {counts.Count} counts.", nameof(counts));
        }

        ZeroCount += zeroCount;
        Count += zeroCount;
        for (var i = 0; i < buckets.Count; i++)
        {
            _buckets[buckets[i]] = _buckets.GetValueOrDefault(buckets[i]) + counts[i];
            Count += counts[i];
        }

        if (max is { } m)
        {
            Max = Max is { } current ? Math.Max(current, m) : m;
        }
    }

    /// <summary>The non-empty buckets in ascending order, as stored per chunk.</summary>
    public (int[] Buckets, long[] Counts) Buckets()
    {
        var ordered = _buckets.OrderBy(b => b.Key).ToArray();
        return (ordered.Select(b => b.Key).ToArray(), ordered.Select(b => b.Value).ToArray());
    }

    /// <summary>
    /// The nearest-rank quantile (the ⌈q·n⌉-th smallest value), within <see cref="RelativeAccuracy"/>; never above
    /// <see cref="Max"/>. Null when empty.
    /// </summary>
    public double? Quantile(double q)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(q, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(q, 1);
        if (Count == 0)
        {
            return null;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(q * Count));
        if (rank <= ZeroCount)
        {
            return 0;
        }

        var seen = ZeroCount;
        foreach (var (index, count) in _buckets.OrderBy(b => b.Key))
        {
            seen += count;
            if (seen >= rank)
            {
                var estimate = index == int.MaxValue ? double.PositiveInfinity : 2 * Math.Pow(Gamma, index) / (Gamma + 1);
                return Math.Min(estimate, Max ?? estimate);
            }
        }

        return Max;
    }
}
