using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Onnx;

public sealed class ScoreOptions
{
    /// <summary>Score rows with NaN or infinite numeric features instead of failing them.</summary>
    public bool AllowNonFinite { get; init; }
}

/// <summary>A row that was not scored. <see cref="Column"/> is null when the model itself failed on the row.</summary>
public sealed record RowFailure(int Row, string? Column, string Reason);

/// <summary>
/// Result of scoring a batch: <see cref="Outputs"/> has one row per entry of <see cref="ScoredRows"/>
/// (indices into the input batch, ascending); every other input row is in <see cref="Failures"/>.
/// </summary>
public sealed class ScoreResult
{
    public ScoreResult(ColumnBatch outputs, int[] scoredRows, IReadOnlyList<RowFailure> failures)
    {
        Outputs = outputs;
        ScoredRows = scoredRows;
        Failures = failures;
    }

    public ColumnBatch Outputs { get; }

    public int[] ScoredRows { get; }

    public IReadOnlyList<RowFailure> Failures { get; }

    /// <summary>Time spent inside ONNX Runtime's Run; the rest of the call converted columns to tensors and back.</summary>
    public TimeSpan RunTime { get; internal set; }
}
