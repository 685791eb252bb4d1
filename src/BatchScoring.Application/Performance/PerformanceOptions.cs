using System.Globalization;

namespace BatchScoring.Application.Performance;

/// <summary>
/// Realised performance settings, section "BatchScoring:Performance":
/// <code>
/// "Performance": { "Schedule": "0 15 * * * ?", "WindowHours": 168, "MinimumLabelledRows": 100, "Threshold": 0.5,
///                  "MaxDrop": 0.05, "MaxRelativeIncrease": 0.2,
///                  "WatchedMetrics": ["accuracy", "f1", "rocAuc", "logLoss", "rmse", "mae", "r2"],
///                  "Models": { "churn": { "Task": "binary", "PositiveClass": "1", "ScoreColumn": "score" } } }
/// </code>
/// </summary>
public sealed class PerformanceOptions
{
    public const string SectionName = "BatchScoring:Performance";

    /// <summary>Quartz cron expression (seconds first) of the scheduled report of every labelled model.</summary>
    public string Schedule { get; set; } = "0 15 * * * ?";

    /// <summary>A report looks at rows scored in this many recent hours (default 7 days).</summary>
    public int WindowHours { get; set; } = 168;

    /// <summary>Reports with fewer labelled rows are stored but neither become the baseline nor raise a drop.</summary>
    public long MinimumLabelledRows { get; set; } = 100;

    /// <summary>Binary classifiers: a row is predicted positive when its positive-class score is at least this.</summary>
    public double Threshold { get; set; } = 0.5;

    /// <summary>Accuracy, precision, recall, F1, ROC AUC and R²: a drop of at least this much (absolute) below the baseline.</summary>
    public double MaxDrop { get; set; } = 0.05;

    /// <summary>Log loss, RMSE and MAE: a rise of at least this fraction above the baseline (0.2 = 20 % worse).</summary>
    public double MaxRelativeIncrease { get; set; } = 0.2;

    /// <summary>Metrics whose drop raises RetrainingRequested (names as in the report's <c>metrics</c>).</summary>
    public List<string> WatchedMetrics { get; set; } = [];

    /// <summary>Per model overrides of what the service infers from the results tables and labels.</summary>
    public Dictionary<string, ModelPerformanceSettings> Models { get; set; } = new(StringComparer.Ordinal);

    /// <summary><see cref="WatchedMetrics"/>, or the default set when none are configured.</summary>
    public IReadOnlyList<string> Watched => WatchedMetrics.Count > 0 ? WatchedMetrics : MetricNames.DefaultWatched;

    public IEnumerable<string> Validate()
    {
        if (WindowHours < 1 || WindowHours > 24 * 366)
        {
            yield return $"{SectionName}:WindowHours must be between 1 and {24 * 366} (was {WindowHours}).";
        }

        if (MinimumLabelledRows < 1 || Threshold is <= 0 or >= 1 || MaxDrop <= 0 || MaxRelativeIncrease <= 0)
        {
            yield return $"{SectionName}: MinimumLabelledRows ≥ 1, 0 < Threshold < 1, MaxDrop > 0 and MaxRelativeIncrease > 0.";
        }

        foreach (var metric in WatchedMetrics.Where(m => !MetricNames.All.Contains(m)))
        {
            yield return $"{SectionName}:WatchedMetrics: unknown metric '{metric}' (known: {string.Join(", ", MetricNames.All)}).";
        }

        foreach (var (model, settings) in Models)
        {
            if (settings.Task is not (null or PerformanceTasks.Binary or PerformanceTasks.Regression))
            {
                yield return $"{SectionName}:Models:{model}:Task must be {PerformanceTasks.Binary} or {PerformanceTasks.Regression} (was '{settings.Task}').";
            }
        }
    }

    /// <summary>Parses a window such as <c>7d</c>, <c>36h</c> or a number of hours; null when it is not one.</summary>
    public static TimeSpan? ParseWindow(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var value = text.Trim();
        var unit = char.ToLowerInvariant(value[^1]);
        var number = char.IsLetter(unit) ? value[..^1] : value;
        if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var amount) || amount < 1)
        {
            return null;
        }

        TimeSpan? window = unit switch
        {
            'd' => TimeSpan.FromDays(amount),
            'h' => TimeSpan.FromHours(amount),
            _ when char.IsDigit(unit) => TimeSpan.FromHours(amount),
            _ => null,
        };
        return window is { } w && w <= TimeSpan.FromDays(366) ? w : null;
    }
}

/// <summary>A model's settings in <see cref="PerformanceOptions.Models"/>.</summary>
public sealed class ModelPerformanceSettings
{
    /// <summary><c>binary</c> or <c>regression</c>; unset: inferred (see docs/performance.md).</summary>
    public string? Task { get; set; }

    /// <summary>Binary classifiers: the class counted as positive; unset: 1 / true / yes, else the second class in order.</summary>
    public string? PositiveClass { get; set; }

    /// <summary>The results column holding the prediction, when the table has several numeric outputs.</summary>
    public string? ScoreColumn { get; set; }
}

/// <summary>Values of a performance report's <c>task</c>.</summary>
public static class PerformanceTasks
{
    public const string Binary = "binary";

    public const string Regression = "regression";

    /// <summary>No usable score column (e.g. a multi-class model): counts only.</summary>
    public const string Unsupported = "unsupported";
}
