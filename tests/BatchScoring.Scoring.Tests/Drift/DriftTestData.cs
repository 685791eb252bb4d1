using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary>Seeded random data and textbook re-computations the drift tests check the library against.</summary>
internal static class DriftTestData
{
    /// <summary>Normal draws by the Box–Muller transform (cosine branch only, one draw per pair of uniforms).</summary>
    public static double[] Normal(int count, double mean, double standardDeviation, int seed)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (var i = 0; i < count; i++)
        {
            var u1 = 1 - random.NextDouble(); // (0, 1]: keeps the logarithm finite
            var u2 = random.NextDouble();
            values[i] = mean + (standardDeviation * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    public static ColumnProfile NumericProfile(double[] values, string name = "x", int sampleSize = 100_000)
    {
        var builder = new ColumnProfileBuilder(name, ProfileColumnKind.Numeric, sampleSize);
        foreach (var value in values)
        {
            builder.Add(value);
        }

        return builder.Build();
    }

    /// <summary>Type 7 percentile (R's default): h = (n − 1)·p, interpolate between the values at floor(h) and floor(h) + 1.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        var h = (sorted.Length - 1) * p;
        var below = (int)Math.Floor(h);
        if (below + 1 >= sorted.Length)
        {
            return sorted[^1];
        }

        return sorted[below] + ((h - below) * (sorted[below + 1] - sorted[below]));
    }

    /// <summary>Two-sample KS distance straight from raw data: the largest ECDF gap over every value of either sample.</summary>
    public static double TwoSampleDistance(double[] first, double[] second)
    {
        var a = first.Order().ToArray();
        var b = second.Order().ToArray();
        int i = 0, j = 0;
        var distance = 0.0;
        while (i < a.Length || j < b.Length)
        {
            var t = j >= b.Length || (i < a.Length && a[i] <= b[j]) ? a[i] : b[j];
            while (i < a.Length && a[i] <= t)
            {
                i++;
            }

            while (j < b.Length && b[j] <= t)
            {
                j++;
            }

            distance = Math.Max(distance, Math.Abs(((double)i / a.Length) - ((double)j / b.Length)));
        }

        return distance;
    }
}
