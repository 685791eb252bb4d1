using System.Diagnostics;
using BatchScoring.Contracts;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Worker.Requests.Batching;

/// <summary>
/// A validated request waiting in its model version's batcher: its rows as columns, and per row the scored
/// output (or failure) as batches complete. Slices of one request are disjoint, so rows are filled without locks;
/// the request completes when its last slice has been written.
/// </summary>
internal sealed class PendingRequest
{
    /// <summary>The request key's column, in batches and in the results table.</summary>
    public const string KeyColumn = "row_key";

    private readonly (ColumnBatch Outputs, int Row)[] _scored;
    private readonly RowFailure?[] _failures;
    private int _remainingRows;
    private int _finished;

    public PendingRequest(ScoreRequest request, ColumnBatch rows, string[] keys)
        : this(request, keys)
    {
        Rows = rows;
    }

    /// <summary>All-float features, row-major (row r, feature f at r × F + f): a few arrays per request instead of one per feature.</summary>
    public PendingRequest(ScoreRequest request, string[] keys, float[] floats, bool[]? floatNulls)
        : this(request, keys)
    {
        Floats = floats;
        FloatNulls = floatNulls;
    }

    private PendingRequest(ScoreRequest request, string[] keys)
    {
        // The rows now live in typed arrays: dropping the per-row feature dictionaries keeps a queued row at about
        // a tenth of its parsed size, which is what lets MaxBacklogRows be generous.
        Request = request with { Rows = [] };
        Keys = keys;
        _scored = new (ColumnBatch, int)[keys.Length];
        _failures = new RowFailure?[keys.Length];
        _remainingRows = keys.Length;
        ReceivedAt = Stopwatch.GetTimestamp();
    }

    /// <summary>The request without its rows (see <see cref="Rows"/>).</summary>
    public ScoreRequest Request { get; }

    /// <summary>Column <c>row_key</c> plus one column per model feature (null when the rows are in <see cref="Floats"/>).</summary>
    public ColumnBatch? Rows { get; }

    /// <summary>Row-major feature values when every feature is a float32 (else null).</summary>
    public float[]? Floats { get; }

    /// <summary>Null flags for <see cref="Floats"/>, same layout; null when no value is null.</summary>
    public bool[]? FloatNulls { get; }

    public string[] Keys { get; }

    public int RowCount => Keys.Length;

    public long ReceivedAt { get; }

    public TaskCompletionSource<ScoreRequestCompleted> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set by the lane when the request finished (any way), so its backlog is released exactly once.</summary>
    public bool TryFinish() => Interlocked.Exchange(ref _finished, 1) == 0;

    public void SetScored(int row, ColumnBatch outputs, int outputRow) => _scored[row] = (outputs, outputRow);

    public void SetFailed(int row, RowFailure failure) => _failures[row] = failure;

    /// <summary>Counts rows done; true when this call finished the last ones.</summary>
    public bool RowsDone(int count) => Interlocked.Add(ref _remainingRows, -count) == 0;

    public ScoreRequestCompleted BuildResult(ScoredModel model)
    {
        var scores = new List<RowScore>(RowCount);
        var failures = new List<RowFailureReport>();
        for (var i = 0; i < RowCount; i++)
        {
            if (_failures[i] is { } failure)
            {
                failures.Add(new RowFailureReport(Keys[i], failure.Column, failure.Reason) { Version = model.Version });
            }
            else if (_scored[i].Outputs is { } outputs)
            {
                scores.Add(new RowScore(Keys[i], OutputValues(outputs, _scored[i].Row)) { Version = model.Version });
            }
        }

        return new ScoreRequestCompleted
        {
            RequestId = Request.RequestId,
            CorrelationId = Request.CorrelationId,
            Model = model,
            Outcome = failures.Count == 0 ? ScoreRequestOutcome.Scored : ScoreRequestOutcome.PartiallyScored,
            Scores = scores,
            Failures = failures,
            CompletedAt = DateTimeOffset.UtcNow,
        };
    }

    private static Dictionary<string, object?> OutputValues(ColumnBatch outputs, int row)
    {
        var values = new Dictionary<string, object?>(outputs.Columns.Count, StringComparer.Ordinal);
        foreach (var column in outputs.Columns)
        {
            values[column.Name] = column.IsNull(row) ? null : column.Kind switch
            {
                ColumnKind.Float32 => column.As<float>()[row] is var f && float.IsFinite(f) ? f : null,
                ColumnKind.Float64 => column.As<double>()[row] is var d && double.IsFinite(d) ? d : null,
                ColumnKind.Float32List => column.As<float[]>()[row] is { } list && Array.TrueForAll(list, float.IsFinite) ? list : null,
                _ => column.GetValue(row),
            };
        }

        return values;
    }
}
