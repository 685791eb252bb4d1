using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>What a <c>score-requests</c> body held: the request, or why it is not one and what could be read to answer it.</summary>
public sealed record ReadScoreRequest
{
    public ScoreRequest? Request { get; init; }

    /// <summary>Why the body is not a ScoreRequest (null when <see cref="Request"/> is set).</summary>
    public string? Error { get; init; }

    /// <summary>requestId / model.name / replyTo / correlationId as far as they could be read, to answer a rejected body.</summary>
    public string? RequestId { get; init; }

    public string? ModelName { get; init; }

    public string? ReplyTo { get; init; }

    public string? CorrelationId { get; init; }

    /// <summary>Set when the body was a MassTransit envelope sent by a request client: answer there, in an envelope.</summary>
    public Uri? ResponseAddress { get; init; }

    /// <summary>The envelope's requestId (a MassTransit request client matches its response on it).</summary>
    public string? EnvelopeRequestId { get; init; }

    /// <summary>The envelope's conversationId, carried into the answer.</summary>
    public string? ConversationId { get; init; }
}
