using BatchScoring.Application.Performance;

namespace BatchScoring.IntegrationTests.Performance;

/// <summary>The metric accumulators alone (no servers): tied scores, undefined metrics, window syntax.</summary>
public sealed class PerformanceMetricsTests
{
    [Fact]
    public void Tied_scores_count_one_half_in_the_auc_as_pairwise_counting_does()
    {
        // Scores on a coarse grid, so most positive–negative pairs tie.
        var random = new Random(3);
        var rows = Enumerable.Range(0, 300).Select(_ => (Score: Math.Round(random.NextDouble(), 1), Positive: random.NextDouble() < 0.4)).ToList();
        var accumulator = new BinaryMetricsAccumulator(0.5);
        foreach (var (score, positive) in rows.OrderBy(r => r.Score))
        {
            accumulator.Add(score, positive);
        }

        double wins = 0;
        var positives = rows.Where(r => r.Positive).ToList();
        var negatives = rows.Where(r => !r.Positive).ToList();
        foreach (var p in positives)
        {
            foreach (var n in negatives)
            {
                wins += p.Score > n.Score ? 1 : p.Score == n.Score ? 0.5 : 0;
            }
        }

        var metrics = accumulator.Result();
        Assert.Equal(wins / (positives.Count * (double)negatives.Count), metrics.RocAuc!.Value, 12);
        Assert.Equal(positives.Count, metrics.Positives);
    }

    [Fact]
    public void Metrics_without_both_classes_or_label_variance_are_absent_not_zero()
    {
        var binary = new BinaryMetricsAccumulator(0.5);
        binary.Add(0.2, false);
        binary.Add(0.7, false);
        var onlyNegatives = binary.Result();
        Assert.Null(onlyNegatives.RocAuc);
        Assert.Null(onlyNegatives.Recall);
        Assert.Null(onlyNegatives.F1);
        Assert.Equal(0.5, onlyNegatives.Accuracy);

        var regression = new RegressionMetricsAccumulator();
        regression.Add(1, 2);
        regression.Add(3, 2);
        var constant = regression.Result();
        Assert.Null(constant.R2);
        Assert.Equal(1, constant.Rmse);
        Assert.Throws<InvalidOperationException>(() => binary.Add(0.1, true)); // rows must come sorted
    }

    [Theory]
    [InlineData("7d", 168)]
    [InlineData("36h", 36)]
    [InlineData("12", 12)]
    [InlineData("0d", null)]
    [InlineData("400d", null)]
    [InlineData("soon", null)]
    public void Windows_are_days_or_hours(string text, int? hours) =>
        Assert.Equal(hours is { } h ? TimeSpan.FromHours(h) : null, PerformanceOptions.ParseWindow(text));
}
