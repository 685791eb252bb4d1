using MathNet.Numerics;

namespace BatchScoring.Scoring.Drift;

/// <summary>
/// The drift tests as pure functions over profile data (proportions, quantiles, counts), so they can be checked
/// against textbook values and reused by any caller without the scoring host.
/// </summary>
public static class DriftStatistics
{
    /// <summary>
    /// Population stability index, Σ (a − e) · ln(a / e) over bins. Both inputs are proportions; each is floored at
    /// <paramref name="floor"/> so an empty bin on either side gives a large but finite contribution.
    /// </summary>
    public static double PopulationStabilityIndex(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double floor = 1e-4)
    {
        if (expected.Length != actual.Length)
        {
            throw new ArgumentException(
                $"expected has {expected.Length} bins but actual has {actual.Length}; both must use the same bins.", nameof(actual));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(floor);
        var sum = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            var e = Math.Max(expected[i], floor);
            var a = Math.Max(actual[i], floor);
            sum += (a - e) * Math.Log(a / e);
        }

        return sum;
    }

    /// <summary>
    /// Pearson's chi-square goodness of fit of observed bin counts against reference proportions. Proportions are
    /// floored at <paramref name="floor"/> and renormalized, so a bin the reference never saw still has an expected
    /// count (and a new category shows up as a large statistic instead of a division by zero).
    /// Degrees of freedom = bins − 1; no observations gives statistic 0 and p-value 1.
    /// </summary>
    public static (double Statistic, int DegreesOfFreedom, double PValue) ChiSquare(
        ReadOnlySpan<long> observed, ReadOnlySpan<double> expectedProportions, double floor = 1e-4)
    {
        if (observed.Length != expectedProportions.Length)
        {
            throw new ArgumentException(
                $"observed has {observed.Length} bins but expectedProportions has {expectedProportions.Length}; both must use the same bins.",
                nameof(expectedProportions));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(floor);
        var degreesOfFreedom = Math.Max(observed.Length - 1, 0);
        long total = 0;
        foreach (var count in observed)
        {
            if (count < 0)
            {
                throw new ArgumentException("Observed counts cannot be negative.", nameof(observed));
            }

            total += count;
        }

        if (total == 0 || degreesOfFreedom == 0)
        {
            return (0, degreesOfFreedom, 1);
        }

        var proportionSum = 0.0;
        foreach (var proportion in expectedProportions)
        {
            proportionSum += Math.Max(proportion, floor);
        }

        var statistic = 0.0;
        for (var i = 0; i < observed.Length; i++)
        {
            var expected = total * Math.Max(expectedProportions[i], floor) / proportionSum;
            var difference = observed[i] - expected;
            statistic += difference * difference / expected;
        }

        return (statistic, degreesOfFreedom, ChiSquareUpperTail(statistic, degreesOfFreedom));
    }

    /// <summary>
    /// P(X ≥ statistic) for a chi-square distribution: the regularized upper incomplete gamma Q(df/2, statistic/2),
    /// computed directly rather than as 1 − CDF so that tiny p-values keep their precision.
    /// </summary>
    public static double ChiSquareUpperTail(double statistic, int degreesOfFreedom)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(degreesOfFreedom, 1);
        if (double.IsNaN(statistic))
        {
            throw new ArgumentException("The statistic is NaN.", nameof(statistic));
        }

        return statistic switch
        {
            <= 0 => 1,
            double.PositiveInfinity => 0,
            _ => Math.Clamp(SpecialFunctions.GammaUpperRegularized(degreesOfFreedom / 2.0, statistic / 2), 0, 1),
        };
    }

    /// <summary>
    /// Kolmogorov–Smirnov distance between the reference, given by its quantiles (levels k / (length − 1), 101 of
    /// them in a profile), and a sample; the p-value uses the effective size n·m / (n + m) of a two-sample test.
    /// </summary>
    /// <remarks>
    /// The reference CDF is piecewise linear through (quantile[k], k / K): 0 below the first quantile, 1 at or above
    /// the last. A run of equal quantiles is a point mass: the CDF jumps there, from the level of the first to that of
    /// the last equal one. D is the largest gap between the sample's ECDF and that CDF, checked just before and at
    /// each distinct sample value (between them the ECDF is flat and the CDF monotone, so nothing larger hides there).
    /// An empty sample gives D 0 and p-value 1.
    /// </remarks>
    public static (double Statistic, double PValue) KolmogorovSmirnov(
        ReadOnlySpan<double> referenceQuantiles, long referenceCount, ReadOnlySpan<double> sample)
    {
        if (referenceQuantiles.Length < 2)
        {
            throw new ArgumentException("The reference needs at least two quantiles.", nameof(referenceQuantiles));
        }

        for (var k = 0; k < referenceQuantiles.Length; k++)
        {
            if (double.IsNaN(referenceQuantiles[k]) || (k > 0 && referenceQuantiles[k] < referenceQuantiles[k - 1]))
            {
                throw new ArgumentException("Reference quantiles must be non-decreasing numbers.", nameof(referenceQuantiles));
            }
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(referenceCount, 1);
        if (sample.IsEmpty)
        {
            return (0, 1);
        }

        var sorted = sample.ToArray();
        Array.Sort(sorted);
        if (double.IsNaN(sorted[0]))
        {
            throw new ArgumentException("The sample contains NaN; missing values are not part of the distribution.", nameof(sample));
        }

        var n = sorted.Length;
        var distance = 0.0;
        for (var first = 0; first < n;)
        {
            var value = sorted[first];
            var last = first;
            while (last + 1 < n && sorted[last + 1] == value)
            {
                last++;
            }

            var below = Math.Abs(((double)first / n) - ReferenceCdf(referenceQuantiles, value, justBefore: true));
            var at = Math.Abs(((double)(last + 1) / n) - ReferenceCdf(referenceQuantiles, value, justBefore: false));
            distance = Math.Max(distance, Math.Max(below, at));
            first = last + 1;
        }

        var effective = (double)n * referenceCount / (n + (double)referenceCount);
        var root = Math.Sqrt(effective);
        var lambda = (root + 0.12 + (0.11 / root)) * distance;
        return (distance, KolmogorovUpperTail(lambda));
    }

    /// <summary>
    /// Asymptotic Kolmogorov distribution tail Q(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2 j² λ²}: the p-value of a KS distance
    /// scaled to λ. Below λ ≈ 1.18 the equivalent form 1 − (√(2π) / λ) Σ_{j≥1} e^{−(2j−1)² π² / (8 λ²)} is used,
    /// because the alternating series converges slowly there (and Q is 1 to double precision below λ ≈ 0.3).
    /// Math.NET Numerics has no Kolmogorov distribution, so this series is ours.
    /// </summary>
    public static double KolmogorovUpperTail(double lambda)
    {
        if (double.IsNaN(lambda))
        {
            throw new ArgumentException("Lambda is NaN.", nameof(lambda));
        }

        if (lambda <= 0)
        {
            return 1;
        }

        double sum = 0;
        if (lambda < 1.18)
        {
            for (var j = 1; j <= 100; j++)
            {
                var odd = (2 * j) - 1;
                var term = Math.Exp(-odd * odd * Math.PI * Math.PI / (8 * lambda * lambda));
                sum += term;
                if (term <= sum * 1e-17)
                {
                    break;
                }
            }

            return Math.Clamp(1 - (Math.Sqrt(2 * Math.PI) / lambda * sum), 0, 1);
        }

        var sign = 1.0;
        for (var j = 1; j <= 100; j++)
        {
            var term = Math.Exp(-2.0 * j * j * lambda * lambda);
            sum += sign * term;
            if (term <= 1e-17)
            {
                break;
            }

            sign = -sign;
        }

        return Math.Clamp(2 * sum, 0, 1);
    }

    /// <summary>Reference CDF at x, or its left limit (just before x) when <paramref name="justBefore"/> is set.</summary>
    private static double ReferenceCdf(ReadOnlySpan<double> quantiles, double x, bool justBefore)
    {
        var top = quantiles.Length - 1;

        // k = the last quantile below x (left limit) or at most x (value at x); its level is k / top.
        int low = 0, high = quantiles.Length;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (justBefore ? quantiles[middle] < x : quantiles[middle] <= x)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        var k = low - 1;
        if (k < 0)
        {
            return 0;
        }

        if (k >= top)
        {
            return 1;
        }

        // quantiles[k] < (or <=) x <= (or <) quantiles[k + 1], so the segment has positive width.
        double start = quantiles[k], end = quantiles[k + 1];
        var fraction = double.IsFinite(start) && double.IsFinite(end) ? (x - start) / (end - start) : 0;
        return (k + Math.Clamp(fraction, 0, 1)) / top;
    }
}
