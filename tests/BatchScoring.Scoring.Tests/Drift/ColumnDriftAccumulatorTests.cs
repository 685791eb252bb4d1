using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary><see cref="ColumnDriftAccumulator"/> and the drift rule of <see cref="DriftThresholds"/>.</summary>
public sealed class ColumnDriftAccumulatorTests
{
    private static readonly Lazy<ColumnProfile> StandardNormal =
        new(() => DriftTestData.NumericProfile(DriftTestData.Normal(100_000, 0, 1, seed: 11)));

    private static ColumnDrift CompareNumeric(ColumnProfile profile, double[] current, int sampleSize = 20_000)
    {
        var accumulator = new ColumnDriftAccumulator(profile, sampleSize);
        foreach (var value in current)
        {
            accumulator.Add(value);
        }

        return accumulator.Compare(DriftThresholds.Default);
    }

    private static ColumnProfile Categorical(params (string Category, int Count)[] counts)
    {
        var builder = new ColumnProfileBuilder("segment", ProfileColumnKind.Categorical);
        foreach (var (category, count) in counts)
        {
            for (var i = 0; i < count; i++)
            {
                builder.Add(category);
            }
        }

        return builder.Build();
    }

    private static ColumnDrift CompareCategorical(ColumnProfile profile, params (string Category, int Count)[] counts)
    {
        var accumulator = new ColumnDriftAccumulator(profile);
        foreach (var (category, count) in counts)
        {
            for (var i = 0; i < count; i++)
            {
                accumulator.Add(category);
            }
        }

        return accumulator.Compare(DriftThresholds.Default);
    }

    [Fact]
    public void Defaults_are_the_documented_thresholds()
    {
        Assert.Equal(new DriftThresholds { Psi = 0.2, PValue = 0.01, KsStatistic = 0.1, MinimumSampleRows = 100 }, DriftThresholds.Default);
    }

    [Fact]
    public void Same_distribution_is_not_drifted()
    {
        var current = DriftTestData.Normal(20_000, 0, 1, seed: 12);

        var drift = CompareNumeric(StandardNormal.Value, [.. current, double.NaN]);

        Assert.False(drift.Drifted, drift.Reason);
        Assert.Null(drift.Reason);
        Assert.Equal((20_000L, 1L), (drift.Rows, drift.Missing));
        Assert.True(drift.Psi < 0.01, $"PSI {drift.Psi}");
        Assert.True(drift.KsPValue > 0.01, $"KS p {drift.KsPValue}");
        Assert.True(drift.ChiSquarePValue > 0.01, $"chi-square p {drift.ChiSquarePValue}"); // over the deciles
    }

    [Fact]
    public void A_one_sd_mean_shift_is_drifted_by_psi()
    {
        var current = DriftTestData.Normal(20_000, 1, 1, seed: 13);

        var drift = CompareNumeric(StandardNormal.Value, current);

        // Independent PSI over the profile's bins from the raw values.
        var actual = new double[StandardNormal.Value.Proportions.Length];
        foreach (var value in current)
        {
            actual[StandardNormal.Value.Edges.Count(edge => edge < value)] += 1.0 / current.Length;
        }

        var hand = StandardNormal.Value.Proportions.Zip(actual).Sum(pair => (Math.Max(pair.Second, 1e-4) - Math.Max(pair.First, 1e-4)) * Math.Log(Math.Max(pair.Second, 1e-4) / Math.Max(pair.First, 1e-4)));
        Assert.True(drift.Drifted);
        Assert.True(drift.Psi >= 0.2, $"PSI {drift.Psi}");
        Assert.Equal(hand, drift.Psi, 9);
        Assert.StartsWith("PSI ", drift.Reason, StringComparison.Ordinal);
        Assert.Contains("≥ 0.2", drift.Reason, StringComparison.Ordinal);
        Assert.True(drift.KsStatistic > 0.3);
    }

    [Fact]
    public void A_shift_below_the_psi_threshold_is_drifted_by_ks_when_material()
    {
        // A 0.3 sd shift: the largest CDF gap is Φ(0.15) − Φ(−0.15) ≈ 0.119, PSI over deciles only about 0.09.
        var drift = CompareNumeric(StandardNormal.Value, DriftTestData.Normal(20_000, 0.3, 1, seed: 18));

        Assert.InRange(drift.Psi, 0.05, 0.2);
        Assert.InRange(drift.KsStatistic!.Value, 0.1, 0.14);
        Assert.True(drift.Drifted);
        Assert.StartsWith("KS D ", drift.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tiny_shift_in_a_big_window_is_significant_but_not_material()
    {
        var reference = DriftTestData.NumericProfile(DriftTestData.Normal(1_000_000, 0, 1, seed: 14));
        var current = DriftTestData.Normal(200_000, 0.02, 1, seed: 15);

        var drift = CompareNumeric(reference, current, sampleSize: 200_000);

        Assert.True(drift.KsPValue < 0.01, $"KS p {drift.KsPValue}");
        Assert.True(drift.KsStatistic < 0.1, $"KS D {drift.KsStatistic}");
        Assert.True(drift.Psi < 0.1, $"PSI {drift.Psi}");
        Assert.False(drift.Drifted, drift.Reason);
        Assert.Null(drift.Reason);
    }

    [Fact]
    public void A_swap_of_category_frequencies_is_drifted()
    {
        var profile = Categorical(("a", 5_000), ("b", 3_000), ("c", 2_000));

        var drift = CompareCategorical(profile, ("a", 3_000), ("b", 5_000), ("c", 2_000));

        // PSI = (0.3 − 0.5)·ln(0.3 / 0.5) + (0.5 − 0.3)·ln(0.5 / 0.3) ≈ 0.204 (the empty "other" bin adds 0).
        Assert.Equal((-0.2 * Math.Log(0.6)) + (0.2 * Math.Log(5 / 3.0)), drift.Psi, 9);
        Assert.True(drift.Drifted);
        Assert.True(drift.ChiSquarePValue < 0.01);
        Assert.Null(drift.KsStatistic);
        Assert.StartsWith("PSI", drift.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_moderate_categorical_shift_is_drifted_by_the_test_when_psi_is_material()
    {
        var profile = Categorical(("a", 5_000), ("b", 3_000), ("c", 2_000));

        var drift = CompareCategorical(profile, ("a", 3_500), ("b", 4_500), ("c", 2_000));

        // Expected counts 5000/3000/2000 (other: 10000 · 1e-4 / 1.0001 ≈ 1): chi-square ≈ 450 + 750 + 0 + 1, PSI ≈ 0.114.
        Assert.InRange(drift.Psi, 0.1, 0.2);
        Assert.InRange(drift.ChiSquare!.Value, 1_190, 1_210);
        Assert.True(drift.Drifted);
        Assert.StartsWith("chi-square p ", drift.Reason, StringComparison.Ordinal);
        Assert.EndsWith("< 0.01 with PSI 0.114 ≥ 0.1", drift.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_small_categorical_wobble_is_not_drifted()
    {
        var profile = Categorical(("a", 5_000), ("b", 3_000), ("c", 2_000));

        var drift = CompareCategorical(profile, ("a", 4_950), ("b", 3_050), ("c", 2_000));

        Assert.False(drift.Drifted, drift.Reason);
        Assert.True(drift.ChiSquarePValue > 0.01);
    }

    [Fact]
    public void A_significant_but_immaterial_categorical_shift_is_not_drifted()
    {
        var profile = Categorical(("a", 5_000), ("b", 3_000), ("c", 2_000));

        // 48/32/20 against 50/30/20 over 200,000 rows: chi-square ≈ 4000²/100000 + 4000²/60000 ≈ 427, but PSI ≈ 0.002.
        var drift = CompareCategorical(profile, ("a", 96_000), ("b", 64_000), ("c", 40_000));

        Assert.True(drift.ChiSquarePValue < 1e-6, $"chi-square p {drift.ChiSquarePValue}");
        Assert.True(drift.Psi < 0.1, $"PSI {drift.Psi}");
        Assert.False(drift.Drifted, drift.Reason);
    }

    [Fact]
    public void Unknown_categories_land_in_other()
    {
        var profile = Categorical(("a", 600), ("b", 400));

        var drift = CompareCategorical(profile, ("a", 300), ("b", 200), ("new", 500));

        Assert.True(drift.Drifted);
        Assert.True(drift.Psi > 2, $"PSI {drift.Psi}");
        Assert.Equal(2, profile.BinOf("new"));
    }

    [Fact]
    public void Fewer_rows_than_the_minimum_are_not_judged()
    {
        var drift = CompareNumeric(StandardNormal.Value, DriftTestData.Normal(99, 5, 1, seed: 16));

        Assert.False(drift.Drifted);
        Assert.Equal("too few rows: 99 < 100", drift.Reason);
        Assert.True(drift.Psi > 1, "statistics are still reported");
    }

    [Fact]
    public void An_empty_reference_has_nothing_to_compare()
    {
        var builder = new ColumnProfileBuilder("x", ProfileColumnKind.Numeric);
        builder.AddMissing();

        var drift = CompareNumeric(builder.Build(), DriftTestData.Normal(500, 0, 1, seed: 17));

        Assert.False(drift.Drifted);
        Assert.Equal(500, drift.Rows);
        Assert.Equal("reference profile has no values", drift.Reason);
    }

    [Fact]
    public void A_malformed_profile_is_rejected_up_front()
    {
        var profile = new ColumnProfile { Name = "x", Kind = ProfileColumnKind.Numeric, Count = 10, Edges = [1, 2], Quantiles = [0, 3], Proportions = [0.5, 0.5] };

        Assert.Throws<ArgumentException>(() => new ColumnDriftAccumulator(profile));
    }
}
