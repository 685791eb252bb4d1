using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary><see cref="DriftStatistics"/> against hand computations, textbook tables and brute-force KS.</summary>
public sealed class DriftStatisticsTests
{
    [Fact]
    public void Psi_matches_a_hand_computed_example()
    {
        double[] expected = [0.25, 0.25, 0.5];
        double[] actual = [0.2, 0.3, 0.5];

        // (0.2 − 0.25)·ln(0.2 / 0.25) + (0.3 − 0.25)·ln(0.3 / 0.25) + (0.5 − 0.5)·ln(1) ≈ 0.011157 + 0.009116.
        var hand = (-0.05 * Math.Log(0.8)) + (0.05 * Math.Log(1.2)) + 0;

        Assert.Equal(hand, DriftStatistics.PopulationStabilityIndex(expected, actual), 12);
        Assert.Equal(0.0202733, DriftStatistics.PopulationStabilityIndex(expected, actual), 6);
    }

    [Fact]
    public void Psi_of_identical_distributions_is_zero()
    {
        double[] proportions = [0.1, 0.2, 0.3, 0.4, 0];

        Assert.Equal(0, DriftStatistics.PopulationStabilityIndex(proportions, proportions));
    }

    [Fact]
    public void Psi_floors_empty_bins_so_it_stays_finite()
    {
        double[] expected = [0.5, 0.5, 0];
        double[] actual = [0.5, 0.4, 0.1];

        var psi = DriftStatistics.PopulationStabilityIndex(expected, actual);

        // The empty reference bin counts as 1e-4: (0.1 − 1e-4)·ln(0.1 / 1e-4).
        var hand = ((0.4 - 0.5) * Math.Log(0.4 / 0.5)) + ((0.1 - 1e-4) * Math.Log(0.1 / 1e-4));
        Assert.True(double.IsFinite(psi));
        Assert.Equal(hand, psi, 12);
        Assert.True(double.IsFinite(DriftStatistics.PopulationStabilityIndex(actual, expected)));
    }

    [Fact]
    public void Psi_rejects_bins_of_different_lengths()
    {
        var error = Assert.Throws<ArgumentException>(() => DriftStatistics.PopulationStabilityIndex([0.5, 0.5], [1.0]));

        Assert.Contains("expected", error.Message, StringComparison.Ordinal);
        Assert.Equal("actual", error.ParamName);
    }

    [Theory]
    [InlineData(3.841, 1, 0.05)]
    [InlineData(6.635, 1, 0.01)]
    [InlineData(5.991, 2, 0.05)]
    [InlineData(11.070, 5, 0.05)]
    [InlineData(23.209, 10, 0.01)]
    [InlineData(3.940, 10, 0.95)] // series branch (x < a + 1)
    [InlineData(2.558, 10, 0.99)]
    [InlineData(67.505, 50, 0.05)]
    [InlineData(124.342, 100, 0.05)]
    public void Chi_square_tail_matches_textbook_critical_values(double statistic, int degreesOfFreedom, double pValue)
    {
        Assert.Equal(pValue, DriftStatistics.ChiSquareUpperTail(statistic, degreesOfFreedom), 5e-4);
    }

    [Theory]
    [InlineData(0.01)]
    [InlineData(0.5)]
    [InlineData(1)]
    [InlineData(2.9)]
    [InlineData(3.1)]
    [InlineData(10)]
    [InlineData(40)]
    public void Chi_square_tail_with_two_degrees_of_freedom_is_exp_of_minus_half_x(double statistic)
    {
        var closedForm = Math.Exp(-statistic / 2);

        Assert.Equal(closedForm, DriftStatistics.ChiSquareUpperTail(statistic, 2), closedForm * 1e-9);
    }

    [Theory]
    [InlineData(4, 1.0)]
    [InlineData(4, 9.0)]
    [InlineData(10, 3.0)]
    [InlineData(10, 30.0)]
    [InlineData(50, 40.0)]
    [InlineData(50, 80.0)]
    [InlineData(100, 90.0)]
    [InlineData(100, 150.0)]
    public void Chi_square_tail_with_even_degrees_of_freedom_matches_the_poisson_sum(int degreesOfFreedom, double statistic)
    {
        // For df = 2k: P(X ≥ x) = e^{−x/2} Σ_{i<k} (x/2)^i / i!, the chance of fewer than k Poisson(x/2) events.
        var half = statistic / 2;
        var term = Math.Exp(-half);
        var sum = 0.0;
        for (var i = 0; i < degreesOfFreedom / 2; i++)
        {
            sum += term;
            term *= half / (i + 1);
        }

        Assert.Equal(sum, DriftStatistics.ChiSquareUpperTail(statistic, degreesOfFreedom), sum * 1e-9);
    }

    [Fact]
    public void Chi_square_tail_is_one_at_zero_and_vanishes_far_out()
    {
        Assert.Equal(1, DriftStatistics.ChiSquareUpperTail(0, 3));
        Assert.True(DriftStatistics.ChiSquareUpperTail(1e6, 49) < 1e-300);
    }

    [Fact]
    public void Chi_square_goodness_of_fit_matches_a_hand_computed_example()
    {
        // n = 100 against 25/50/25: (30 − 25)²/25 + (50 − 50)²/50 + (20 − 25)²/25 = 2; df 2, p = e^{−1}.
        var (statistic, degreesOfFreedom, pValue) = DriftStatistics.ChiSquare([30, 50, 20], [0.25, 0.5, 0.25]);

        Assert.Equal(2, statistic, 12);
        Assert.Equal(2, degreesOfFreedom);
        Assert.Equal(Math.Exp(-1), pValue, 1e-9);
    }

    [Fact]
    public void Chi_square_floors_and_renormalizes_an_empty_reference_bin()
    {
        var (statistic, _, pValue) = DriftStatistics.ChiSquare([50, 49, 1], [0.5, 0.5, 0]);

        // Floored proportions 0.5, 0.5, 1e-4 sum to 1.0001; expected counts are 100·p / 1.0001.
        double e0 = 100 * 0.5 / 1.0001, e2 = 100 * 1e-4 / 1.0001;
        var hand = (Math.Pow(50 - e0, 2) / e0) + (Math.Pow(49 - e0, 2) / e0) + (Math.Pow(1 - e2, 2) / e2);
        Assert.Equal(hand, statistic, 9);
        Assert.True(pValue < 1e-6);
    }

    [Fact]
    public void Chi_square_of_no_observations_is_zero_with_p_one()
    {
        Assert.Equal((0.0, 2, 1.0), DriftStatistics.ChiSquare([0, 0, 0], [0.2, 0.3, 0.5]));
    }

    [Theory]
    [InlineData(1.358, 0.05)]
    [InlineData(1.628, 0.01)]
    [InlineData(1.224, 0.10)]
    public void Kolmogorov_tail_matches_textbook_critical_values(double lambda, double pValue)
    {
        Assert.Equal(pValue, DriftStatistics.KolmogorovUpperTail(lambda), 2e-3);
    }

    [Theory]
    [InlineData(0.4)]
    [InlineData(0.6)]
    [InlineData(0.9)]
    [InlineData(1.1)]
    [InlineData(1.17)]
    [InlineData(1.19)]
    [InlineData(1.5)]
    [InlineData(2.5)]
    public void Kolmogorov_tail_equals_the_alternating_series_summed_in_full(double lambda)
    {
        // 2 Σ (−1)^{j−1} e^{−2 j² λ²}, 400 terms: slow but exact enough for λ ≥ 0.4.
        var sum = 0.0;
        for (var j = 1; j <= 400; j++)
        {
            sum += (j % 2 == 1 ? 1 : -1) * Math.Exp(-2.0 * j * j * lambda * lambda);
        }

        Assert.Equal(2 * sum, DriftStatistics.KolmogorovUpperTail(lambda), 1e-10);
    }

    [Fact]
    public void Kolmogorov_tail_is_one_for_small_lambda()
    {
        Assert.Equal(1, DriftStatistics.KolmogorovUpperTail(0));
        Assert.Equal(1, DriftStatistics.KolmogorovUpperTail(0.2), 1e-12);
    }

    [Fact]
    public void Ks_from_a_profile_matches_brute_force_two_sample_ks()
    {
        var reference = DriftTestData.Normal(50_000, 0, 1, seed: 101);
        var profile = DriftTestData.NumericProfile(reference);
        var sample = DriftTestData.Normal(2_000, 0.3, 1, seed: 202);

        var (statistic, pValue) = DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, sample);

        var bruteForce = DriftTestData.TwoSampleDistance(reference, sample);
        Assert.True(Math.Abs(statistic - bruteForce) < 0.02, $"profile D {statistic}, brute force D {bruteForce}");
        Assert.True(bruteForce > 0.08, $"a 0.3 sd shift should show, D {bruteForce}");
        Assert.True(pValue < 1e-6);
    }

    [Fact]
    public void Ks_of_a_sample_from_the_reference_distribution_is_not_significant()
    {
        var profile = DriftTestData.NumericProfile(DriftTestData.Normal(50_000, 0, 1, seed: 101));
        var sample = DriftTestData.Normal(2_000, 0, 1, seed: 303);

        var (statistic, pValue) = DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, sample);

        Assert.True(pValue > 0.01, $"D {statistic}, p {pValue}");
        Assert.True(statistic < 0.04);
    }

    [Fact]
    public void Ks_of_a_half_sd_shift_is_highly_significant()
    {
        var profile = DriftTestData.NumericProfile(DriftTestData.Normal(50_000, 0, 1, seed: 101));
        var sample = DriftTestData.Normal(2_000, 0.5, 1, seed: 404);

        var (_, pValue) = DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, sample);

        Assert.True(pValue < 1e-6, $"p {pValue}");
    }

    [Fact]
    public void Ks_handles_point_masses_in_the_reference()
    {
        // 95% zeros: the reference CDF jumps at 0, so a sample with the same 95/5 mix stays close to it.
        var random = new Random(5);
        var reference = Enumerable.Range(0, 20_000).Select(_ => random.NextDouble() < 0.95 ? 0 : 1 + random.NextDouble()).ToArray();
        var sample = Enumerable.Range(0, 2_000).Select(_ => random.NextDouble() < 0.95 ? 0 : 1 + random.NextDouble()).ToArray();
        var profile = DriftTestData.NumericProfile(reference);

        var (statistic, _) = DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, sample);
        var shifted = DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, sample.Select(v => v == 0 ? 0.5 : v).ToArray());

        Assert.True(Math.Abs(statistic - DriftTestData.TwoSampleDistance(reference, sample)) < 0.02, $"D {statistic}");
        Assert.True(shifted.Statistic > 0.9, $"moving the mass off the jump must show, D {shifted.Statistic}");
    }

    [Fact]
    public void Ks_of_an_empty_sample_is_zero_with_p_one()
    {
        var profile = DriftTestData.NumericProfile(DriftTestData.Normal(1_000, 0, 1, seed: 1));

        Assert.Equal((0.0, 1.0), DriftStatistics.KolmogorovSmirnov(profile.Quantiles, profile.Count, []));
    }
}
