namespace BatchScoring.Application.Performance;

/// <summary>
/// Realised metrics over the labelled rows of a report. Binary classifiers: accuracy, precision, recall and F1 at
/// <see cref="PerformanceOptions.Threshold"/>, ROC AUC (ties count one half) and log loss (probabilities clipped to
/// [1e-15, 1 − 1e-15]); regressors: RMSE, MAE, R². A metric is null where it is undefined (no positives, constant labels).
/// </summary>
public sealed record PerformanceMetrics
{
    /// <summary>Labelled rows the metrics were computed over.</summary>
    public long Rows { get; init; }

    /// <summary>Binary: labelled rows of the positive class.</summary>
    public long? Positives { get; init; }

    public double? Accuracy { get; init; }

    public double? Precision { get; init; }

    public double? Recall { get; init; }

    public double? F1 { get; init; }

    public double? RocAuc { get; init; }

    public double? LogLoss { get; init; }

    public double? Rmse { get; init; }

    public double? Mae { get; init; }

    public double? R2 { get; init; }

    /// <summary>The metric named as in JSON (<see cref="MetricNames"/>), or null.</summary>
    public double? Get(string metric) => metric switch
    {
        MetricNames.Accuracy => Accuracy,
        MetricNames.Precision => Precision,
        MetricNames.Recall => Recall,
        MetricNames.F1 => F1,
        MetricNames.RocAuc => RocAuc,
        MetricNames.LogLoss => LogLoss,
        MetricNames.Rmse => Rmse,
        MetricNames.Mae => Mae,
        MetricNames.R2 => R2,
        _ => null,
    };
}

/// <summary>Metric names as they appear in reports, settings and events.</summary>
public static class MetricNames
{
    public const string Accuracy = "accuracy";
    public const string Precision = "precision";
    public const string Recall = "recall";
    public const string F1 = "f1";
    public const string RocAuc = "rocAuc";
    public const string LogLoss = "logLoss";
    public const string Rmse = "rmse";
    public const string Mae = "mae";
    public const string R2 = "r2";

    public static readonly IReadOnlyList<string> All = [Accuracy, Precision, Recall, F1, RocAuc, LogLoss, Rmse, Mae, R2];

    public static readonly IReadOnlyList<string> DefaultWatched = [Accuracy, F1, RocAuc, LogLoss, Rmse, Mae, R2];

    /// <summary>Errors: lower is better, and a drop is a relative rise.</summary>
    public static bool LowerIsBetter(string metric) => metric is LogLoss or Rmse or Mae;
}

/// <summary>Folds labelled rows of a binary classifier, in ascending score order, into <see cref="PerformanceMetrics"/>.</summary>
public sealed class BinaryMetricsAccumulator(double threshold)
{
    private const double Epsilon = 1e-15;
    private long _tp, _fp, _tn, _fn;
    private double _logLoss;

    // ROC AUC by the Mann–Whitney count, over rows sorted by score: each positive beats the negatives below its score
    // and ties with those at its score (one half each). A tie group is closed when the score changes.
    private double _groupScore = double.NaN;
    private long _groupPositives, _groupNegatives, _negativesBelow;
    private double _pairs;
    private double _lastScore = double.NegativeInfinity;

    public void Add(double score, bool positive)
    {
        if (score < _lastScore)
        {
            throw new InvalidOperationException("Rows must come in ascending score order.");
        }

        _lastScore = score;
        if (score != _groupScore)
        {
            CloseGroup();
            _groupScore = score;
        }

        var predicted = score >= threshold;
        var p = Math.Clamp(score, Epsilon, 1 - Epsilon);
        if (positive)
        {
            _groupPositives++;
            _logLoss -= Math.Log(p);
            if (predicted) { _tp++; } else { _fn++; }
        }
        else
        {
            _groupNegatives++;
            _logLoss -= Math.Log(1 - p);
            if (predicted) { _fp++; } else { _tn++; }
        }
    }

    public PerformanceMetrics Result()
    {
        CloseGroup();
        var rows = _tp + _fp + _tn + _fn;
        var positives = _tp + _fn;
        var negatives = _tn + _fp;
        double? precision = _tp + _fp == 0 ? null : (double)_tp / (_tp + _fp);
        double? recall = positives == 0 ? null : (double)_tp / positives;
        double? f1 = precision is { } pr && recall is { } rc ? (pr + rc == 0 ? 0 : 2 * pr * rc / (pr + rc)) : null;
        return new PerformanceMetrics
        {
            Rows = rows,
            Positives = positives,
            Accuracy = rows == 0 ? null : (double)(_tp + _tn) / rows,
            Precision = precision,
            Recall = recall,
            F1 = f1,
            RocAuc = positives == 0 || negatives == 0 ? null : _pairs / ((double)positives * negatives),
            LogLoss = rows == 0 ? null : _logLoss / rows,
        };
    }

    private void CloseGroup()
    {
        _pairs += _groupPositives * (_negativesBelow + (_groupNegatives / 2.0));
        _negativesBelow += _groupNegatives;
        _groupPositives = 0;
        _groupNegatives = 0;
    }
}

/// <summary>Folds labelled rows of a regressor into RMSE, MAE and R² (label variance by Welford's method).</summary>
public sealed class RegressionMetricsAccumulator
{
    private long _rows;
    private double _squaredError, _absoluteError, _mean, _m2;

    public void Add(double prediction, double label)
    {
        var error = label - prediction;
        _squaredError += error * error;
        _absoluteError += Math.Abs(error);
        _rows++;
        var delta = label - _mean;
        _mean += delta / _rows;
        _m2 += delta * (label - _mean);
    }

    public PerformanceMetrics Result() => new()
    {
        Rows = _rows,
        Rmse = _rows == 0 ? null : Math.Sqrt(_squaredError / _rows),
        Mae = _rows == 0 ? null : _absoluteError / _rows,
        R2 = _rows == 0 || _m2 == 0 ? null : 1 - (_squaredError / _m2),
    };
}
