using BatchScoring.Contracts;
using BatchScoring.Data;

namespace BatchScoring.Worker.Requests.Answers;

/// <summary>
/// The answer to a redelivered request some of whose rows an earlier delivery committed: those rows as committed
/// (results and failed-rows tables), the others as scored now, in the request's row order.
/// </summary>
internal static class RedeliveredAnswer
{
    public static ScoreRequestCompleted Merge(ScoreRequest request, ScoredModel model, CommittedRequestRows committed, ScoreRequestCompleted? rest)
    {
        var restScores = new Dictionary<string, RowScore>(StringComparer.Ordinal);
        var restFailures = new Dictionary<string, RowFailureReport>(StringComparer.Ordinal);
        foreach (var score in rest?.Scores ?? [])
        {
            restScores.TryAdd(score.Key, score);
        }

        foreach (var failure in rest?.Failures ?? [])
        {
            restFailures.TryAdd(failure.Key ?? "", failure);
        }

        var scores = new List<RowScore>(request.Rows.Count);
        var failures = new List<RowFailureReport>();
        foreach (var row in request.Rows)
        {
            if (committed.Scored.TryGetValue(row.Key, out var outputs))
            {
                scores.Add(new RowScore(row.Key, outputs) { Version = model.Version });
            }
            else if (committed.Failed.TryGetValue(row.Key, out var failed))
            {
                failures.Add(new RowFailureReport(row.Key, failed.Column, failed.Reason) { Version = model.Version });
            }
            else if (restScores.TryGetValue(row.Key, out var score))
            {
                scores.Add(score);
            }
            else if (restFailures.TryGetValue(row.Key, out var failure))
            {
                failures.Add(failure);
            }
        }

        return RequestAnswers.Create(request, model, failures.Count == 0 ? ScoreRequestOutcome.Scored : ScoreRequestOutcome.PartiallyScored, null) with
        {
            Scores = scores,
            Failures = failures,
        };
    }
}
