using System.Diagnostics;
using System.Text;
using BatchScoring.Application;
using RabbitMQ.Client;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// The span of one score request, from its delivery to its acknowledgement, continuing the producer's trace: W3C
/// <c>traceparent</c>, or the W3C id MassTransit writes as <c>Diagnostic-Id</c> (older: <c>MT-Activity-Id</c>).
/// </summary>
internal static class RequestTracing
{
    private static readonly string[] ParentHeaders = ["traceparent", "Diagnostic-Id", "MT-Activity-Id"];

    public static Activity? Start(IReadOnlyBasicProperties properties, ReadScoreRequest read)
    {
        if (!ScoringTracing.Source.HasListeners())
        {
            return null;
        }

        var activity = Parent(properties) is { } parent
            ? ScoringTracing.Source.StartActivity("score request", ActivityKind.Consumer, parent)
            : ScoringTracing.Source.StartActivity("score request", ActivityKind.Consumer);
        activity?.SetTag("batchscoring.request_id", read.RequestId).SetTag("batchscoring.model", read.ModelName);
        return activity;
    }

    private static ActivityContext? Parent(IReadOnlyBasicProperties properties)
    {
        if (properties.Headers is not { } headers)
        {
            return null;
        }

        foreach (var name in ParentHeaders)
        {
            var text = headers.TryGetValue(name, out var value) ? value switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                string s => s,
                _ => null,
            } : null;
            if (text is not null && ActivityContext.TryParse(text, null, isRemote: true, out var context))
            {
                return context;
            }
        }

        return null;
    }
}
