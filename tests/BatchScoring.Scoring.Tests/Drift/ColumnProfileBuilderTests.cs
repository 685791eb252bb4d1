using System.Text.Json;
using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary><see cref="ColumnProfileBuilder"/>: quantiles, bins, ties, missing values, bounded memory, categories, JSON.</summary>
public sealed class ColumnProfileBuilderTests
{
    [Fact]
    public void Deciles_of_one_to_a_thousand_are_the_type_7_percentiles()
    {
        var values = Enumerable.Range(1, 1000).Select(i => (double)i).ToArray();
        var shuffled = values.ToArray();
        new Random(3).Shuffle(shuffled);

        var profile = DriftTestData.NumericProfile(shuffled);

        var deciles = Enumerable.Range(1, 9).Select(d => DriftTestData.Percentile(values, d / 10.0)).ToArray();
        Assert.Equal(100.9, deciles[0], 9); // h = 999 · 0.1 = 99.9 → 100 + 0.9 · (101 − 100)
        Assert.Equal(deciles, profile.Edges, new ToleranceComparer(1e-9));
        Assert.Equal(101, profile.Quantiles.Length);
        for (var p = 0; p <= 100; p++)
        {
            Assert.Equal(DriftTestData.Percentile(values, p / 100.0), profile.Quantiles[p], 9);
        }

        Assert.Equal(1, profile.Quantiles[0]);
        Assert.Equal(500.5, profile.Quantiles[50], 9);
        Assert.Equal(1000, profile.Quantiles[100]);
        Assert.Equal(Enumerable.Repeat(0.1, 10), profile.Proportions, new ToleranceComparer(1e-12));
        Assert.Equal(1000, profile.Count);
        Assert.Empty(profile.Categories);
    }

    [Fact]
    public void Bins_follow_the_documented_edge_rule()
    {
        var profile = new ColumnProfile { Name = "x", Kind = ProfileColumnKind.Numeric, Edges = [1, 2, 3] };

        Assert.Equal(0, profile.BinOf(double.NegativeInfinity));
        Assert.Equal(0, profile.BinOf(1));
        Assert.Equal(1, profile.BinOf(1.5));
        Assert.Equal(1, profile.BinOf(2));
        Assert.Equal(2, profile.BinOf(3));
        Assert.Equal(3, profile.BinOf(3.0001));
        Assert.Equal(3, profile.BinOf(double.PositiveInfinity));
        Assert.Throws<ArgumentException>(() => profile.BinOf(double.NaN));
    }

    [Fact]
    public void Tied_deciles_collapse_into_one_edge()
    {
        var builder = new ColumnProfileBuilder("spend", ProfileColumnKind.Numeric);
        for (var i = 0; i < 1000; i++)
        {
            builder.Add(i < 950 ? 0 : i - 949);
        }

        var profile = builder.Build();

        // Every decile of a column that is 95% zeros is 0: one edge, two bins (v <= 0 and v > 0).
        Assert.Equal([0.0], profile.Edges);
        Assert.Equal([0.95, 0.05], profile.Proportions, new ToleranceComparer(1e-12));
        Assert.Equal(0, profile.Quantiles[94]);
        Assert.Equal(DriftTestData.Percentile([.. Enumerable.Repeat(0.0, 950), .. Enumerable.Range(1, 50).Select(i => (double)i)], 0.95), profile.Quantiles[95], 12);
    }

    [Fact]
    public void Missing_values_are_counted_apart()
    {
        var numeric = new ColumnProfileBuilder("x", ProfileColumnKind.Numeric);
        numeric.Add(double.NaN);
        numeric.AddMissing();
        numeric.Add(2.5);
        numeric.Add(1.5);
        var categorical = new ColumnProfileBuilder("c", ProfileColumnKind.Categorical);
        categorical.Add((string?)null);
        categorical.Add("");
        categorical.AddMissing();
        categorical.Add("a");

        var numericProfile = numeric.Build();
        var categoricalProfile = categorical.Build();

        Assert.Equal((2L, 2L), (numericProfile.Count, numericProfile.Missing));
        Assert.Equal(1, numericProfile.Proportions.Sum(), 12);
        Assert.Equal((1L, 3L), (categoricalProfile.Count, categoricalProfile.Missing));
        Assert.Equal(["a"], categoricalProfile.Categories);
        Assert.Equal([1.0, 0.0], categoricalProfile.Proportions);
    }

    [Fact]
    public void A_column_without_values_builds_empty_arrays()
    {
        var builder = new ColumnProfileBuilder("x", ProfileColumnKind.Numeric);
        builder.AddMissing();
        builder.Add(double.NaN);

        var profile = builder.Build();

        Assert.Equal((0L, 2L), (profile.Count, profile.Missing));
        Assert.Empty(profile.Edges);
        Assert.Empty(profile.Quantiles);
        Assert.Empty(profile.Categories);
        Assert.Empty(profile.Proportions);
    }

    [Fact]
    public void The_reservoir_bounds_memory_and_still_samples_the_whole_stream()
    {
        const int total = 1_000_000;
        var builder = new ColumnProfileBuilder("x", ProfileColumnKind.Numeric, sampleSize: 1_000);

        // An ascending stream: keeping only the first values (not a uniform sample) would put every quantile near 0.
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < total; i++)
        {
            builder.Add((i + 0.5) / total);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var profile = builder.Build();

        Assert.True(allocated < 64 * 1024, $"adding a million values allocated {allocated} bytes");
        Assert.Equal(total, profile.Count);
        for (var p = 0; p <= 100; p += 5)
        {
            Assert.True(Math.Abs(profile.Quantiles[p] - (p / 100.0)) < 0.05, $"percentile {p} is {profile.Quantiles[p]}");
        }

        Assert.Equal(1, profile.Proportions.Sum(), 12);
    }

    [Fact]
    public void Categorical_profile_keeps_the_top_fifty_and_sums_the_rest_as_other()
    {
        var builder = new ColumnProfileBuilder("c", ProfileColumnKind.Categorical);
        var counts = Enumerable.Range(0, 60).ToDictionary(i => $"k{i:00}", i => (60 - i) * 10);
        foreach (var (category, count) in counts.Reverse())
        {
            for (var i = 0; i < count; i++)
            {
                builder.Add(category);
            }
        }

        var profile = builder.Build();

        var total = (double)counts.Values.Sum();
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"k{i:00}"), profile.Categories);
        Assert.Equal(51, profile.Proportions.Length);
        Assert.Equal(600 / total, profile.Proportions[0], 12);
        Assert.Equal(Enumerable.Range(50, 10).Sum(i => (60 - i) * 10) / total, profile.Proportions[^1], 12);
        Assert.Equal(1, profile.Proportions.Sum(), 12);
        Assert.Equal(50, profile.BinOf("k99"));
        Assert.Equal(3, profile.BinOf("k03"));
        Assert.Empty(profile.Edges);
        Assert.Empty(profile.Quantiles);
    }

    [Fact]
    public void Equally_frequent_categories_are_ordered_by_ordinal_name()
    {
        var builder = new ColumnProfileBuilder("c", ProfileColumnKind.Categorical);
        foreach (var value in new[] { "b", "a", "B", "c", "c" })
        {
            builder.Add(value);
        }

        Assert.Equal(["c", "B", "a", "b"], builder.Build().Categories);
    }

    [Fact]
    public void Categories_past_the_tracking_cap_count_as_other()
    {
        var builder = new ColumnProfileBuilder("id", ProfileColumnKind.Categorical);
        for (var i = 0; i < ColumnProfileBuilder.MaxTrackedCategories; i++)
        {
            builder.Add($"c{i:00000}");
        }

        // The most frequent category, but first seen after 10,000 distinct ones: never tracked by name.
        for (var i = 0; i < 100; i++)
        {
            builder.Add("late");
        }

        var profile = builder.Build();

        Assert.Equal(10_100, profile.Count);
        Assert.DoesNotContain("late", profile.Categories);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"c{i:00000}"), profile.Categories);
        Assert.Equal((10_100 - 50) / 10_100.0, profile.Proportions[^1], 12);
    }

    [Fact]
    public void Numbers_added_to_a_categorical_column_are_category_codes()
    {
        var builder = new ColumnProfileBuilder("code", ProfileColumnKind.Categorical);
        builder.Add(3);
        builder.Add(3);
        builder.Add(1.5);
        builder.Add(double.NaN);

        var profile = builder.Build();

        Assert.Equal(["3", "1.5"], profile.Categories);
        Assert.Equal(1, profile.Missing);
        Assert.Throws<InvalidOperationException>(() => new ColumnProfileBuilder("x", ProfileColumnKind.Numeric).Add("3"));
    }

    [Fact]
    public void Profiles_round_trip_through_web_json_with_the_kind_as_text()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var numeric = DriftTestData.NumericProfile(DriftTestData.Normal(5_000, 2, 3, seed: 9), name: "amount") with { Missing = 4 };
        var categoricalBuilder = new ColumnProfileBuilder("country", ProfileColumnKind.Categorical);
        foreach (var value in new[] { "de", "fr", "de", "ü", null })
        {
            categoricalBuilder.Add(value);
        }

        var categorical = categoricalBuilder.Build();

        foreach (var profile in new[] { numeric, categorical })
        {
            var json = JsonSerializer.Serialize(profile, options);
            var back = JsonSerializer.Deserialize<ColumnProfile>(json, options)!;

            Assert.Contains($"\"kind\":\"{profile.Kind}\"", json, StringComparison.Ordinal);
            Assert.Equal(profile.Name, back.Name);
            Assert.Equal(profile.Kind, back.Kind);
            Assert.Equal(profile.Count, back.Count);
            Assert.Equal(profile.Missing, back.Missing);
            Assert.Equal(profile.Edges, back.Edges);
            Assert.Equal(profile.Quantiles, back.Quantiles);
            Assert.Equal(profile.Categories, back.Categories);
            Assert.Equal(profile.Proportions, back.Proportions);
        }
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
