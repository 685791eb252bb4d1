using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Answers;

/// <summary>Answers built without rows: rejected, timed out, overloaded (rows are added to scored answers).</summary>
internal static class RequestAnswers
{
    public static ScoreRequestCompleted Create(string? requestId, string? correlationId, ScoredModel model, string outcome, string? error) => new()
    {
        RequestId = requestId ?? "",
        CorrelationId = correlationId,
        Model = model,
        Outcome = outcome,
        Error = error,
        CompletedAt = DateTimeOffset.UtcNow,
    };

    public static ScoreRequestCompleted Create(ScoreRequest request, ScoredModel model, string outcome, string? error) =>
        Create(request.RequestId, request.CorrelationId, model, outcome, error);

    public static ScoreRequestCompleted Rejected(ScoreRequest request, ScoredModel model, string error) =>
        Create(request, model, ScoreRequestOutcome.Rejected, error);
}
