using BatchScoring.Contracts;
using BatchScoring.Worker.Requests.Answers;

namespace BatchScoring.Worker.Requests.Canary;

/// <summary>A request's rows as one version scored them (or the answer that version gave instead of rows).</summary>
internal sealed record CanaryPart(int Version, IReadOnlyList<ScoreRequestRow> Rows, ScoreRequestCompleted Answer);

/// <summary>
/// One answer from the answers of a request's main and canary parts: rows in request order, each with the version that
/// scored it. Rows of a part that was not scored (overloaded, timed out) are failures naming why; when no part was
/// scored the answer is that outcome for the whole request.
/// </summary>
internal static class CanaryAnswer
{
    public static ScoreRequestCompleted Merge(ScoreRequest request, ScoredModel model, IReadOnlyList<CanaryPart> parts)
    {
        var scoredParts = parts.Where(p => HasRows(p.Answer.Outcome)).ToList();
        if (scoredParts.Count == 0)
        {
            var first = parts[0].Answer;
            return RequestAnswers.Create(request, model, first.Outcome, first.Error);
        }

        var byKey = new Dictionary<string, Queue<object>>(StringComparer.Ordinal);
        void Add(string key, object item)
        {
            if (!byKey.TryGetValue(key, out var queue))
            {
                byKey[key] = queue = new Queue<object>(1);
            }

            queue.Enqueue(item);
        }

        string? error = null;
        foreach (var part in parts)
        {
            if (HasRows(part.Answer.Outcome))
            {
                foreach (var score in part.Answer.Scores)
                {
                    Add(score.Key, score);
                }

                foreach (var failure in part.Answer.Failures)
                {
                    Add(failure.Key ?? "", failure);
                }
            }
            else
            {
                error = $"Rows for v{part.Version} were not scored ({part.Answer.Outcome}): {part.Answer.Error}";
                foreach (var row in part.Rows)
                {
                    Add(row.Key, new RowFailureReport(row.Key, null, $"{part.Answer.Outcome}: {part.Answer.Error}") { Version = part.Version });
                }
            }
        }

        var scores = new List<RowScore>(request.Rows.Count);
        var failures = new List<RowFailureReport>();
        foreach (var row in request.Rows)
        {
            if (byKey.TryGetValue(row.Key, out var queue) && queue.TryDequeue(out var item))
            {
                if (item is RowScore score)
                {
                    scores.Add(score);
                }
                else
                {
                    failures.Add((RowFailureReport)item);
                }
            }
        }

        return RequestAnswers.Create(request, model, failures.Count == 0 ? ScoreRequestOutcome.Scored : ScoreRequestOutcome.PartiallyScored, error) with
        {
            Scores = scores,
            Failures = failures,
        };
    }

    private static bool HasRows(string outcome) => outcome is ScoreRequestOutcome.Scored or ScoreRequestOutcome.PartiallyScored;
}
