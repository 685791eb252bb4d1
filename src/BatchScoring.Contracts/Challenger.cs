namespace BatchScoring.Contracts;

/// <summary>The challenger of a job (<see cref="SubmitScoringJob.Challenger"/>), where its results are and how it compares.</summary>
public sealed record ChallengerStatus
{
    public required string Model { get; init; }
    public required int ModelVersion { get; init; }
    public required string ModelSha256 { get; init; }

    /// <summary><c>&lt;OutputTable&gt;_challenger</c>; null when the job writes no table.</summary>
    public string? OutputTable { get; init; }

    /// <summary><c>&lt;OutputParquet&gt;/challenger</c>; null when the job writes no Parquet.</summary>
    public string? OutputParquet { get; init; }

    /// <summary>
    /// Champion against challenger over the chunks committed so far; once the job ended, the comparison stored in
    /// <c>scoring.challenger_comparisons</c>. Null in submit and list responses.
    /// </summary>
    public ChallengerComparison? Comparison { get; init; }
}

/// <summary>How a challenger's results compare with the champion's over the same rows.</summary>
public sealed record ChallengerComparison
{
    /// <summary>True when the job ended and this is the stored comparison; false: merged from the chunks committed so far.</summary>
    public required bool Final { get; init; }

    /// <summary>Rows both versions scored.</summary>
    public required long RowsCompared { get; init; }

    /// <summary>Rows the champion scored and the challenger could not (not in the challenger's results).</summary>
    public required long ChallengerFailedRows { get; init; }

    /// <summary>Share of compared rows whose predicted labels are equal; null unless both versions are classifiers with a label output.</summary>
    public double? AgreementRate { get; init; }

    /// <summary>Quantiles of |champion − challenger| on the primary score; null when either version has no numeric output.</summary>
    public ScoreDifference? ScoreDifference { get; init; }

    /// <summary>Each version's metrics against delayed labels, when labels exist for the job's keys; else null.</summary>
    public IReadOnlyList<RealisedMetrics>? RealisedMetrics { get; init; }
}

/// <summary>
/// Quantiles of |champion − challenger| over the compared rows (nearest rank; within 0.5% of the exact value, the
/// maximum exact), on <see cref="ChampionColumn"/> and <see cref="ChallengerColumn"/>.
/// </summary>
public sealed record ScoreDifference(string ChampionColumn, string ChallengerColumn, double P50, double P90, double P99, double Max);

/// <summary>One version's realised metrics over the rows that have a label (accuracy for classifiers; RMSE and MAE otherwise).</summary>
public sealed record RealisedMetrics(string Role, string Model, int ModelVersion, long LabelledRows, double? Accuracy, double? Rmse, double? Mae);
