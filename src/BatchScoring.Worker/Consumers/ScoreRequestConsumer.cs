using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Application.Requests;
using BatchScoring.Contracts;
using MassTransit;
using MassTransit.Configuration;
using MassTransit.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BatchScoring.Worker.Consumers;

/// <summary>
/// Request mode: one message = one <see cref="ScoreRequest"/> (plain JSON or a MassTransit envelope). The rows go
/// into the model version's batcher; the message is acknowledged only after they are written and the answer is
/// published (and sent to the reply address). Invalid requests are answered <c>rejected</c>, then fault without
/// retry into <c>score-requests_error</c>.
/// </summary>
public sealed class ScoreRequestConsumer(RequestScoringService service, ScoreRequestReplies replies) : IConsumer<ScoreRequest>
{
    public async Task Consume(ConsumeContext<ScoreRequest> context)
    {
        if (context.SentTime is { } sent)
        {
            ScoringMetrics.QueueWaitSeconds.WithLabels("request").Observe(Math.Max(0, (DateTime.UtcNow - sent).TotalSeconds));
        }

        var completed = await service.ScoreAsync(context.Message, context.CancellationToken);
        await replies.AnswerAsync(context, completed, context.Message.ReplyTo, context.CancellationToken);
        if (completed.Outcome == ScoreRequestOutcome.Rejected)
        {
            throw new ScoreRequestRejectedException(completed.Error ?? "Invalid request.");
        }
    }
}

public sealed class ScoreRequestConsumerDefinition : ConsumerDefinition<ScoreRequestConsumer>
{
    private readonly int _concurrency;

    public ScoreRequestConsumerDefinition(IOptions<BatchScoringOptions> options, IOptions<RequestBatchingOptions> requests)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(requests);
        _concurrency = requests.Value.ConsumerConcurrency;
        EndpointName = options.Value.QueueName(RequestBatchingOptions.QueueName);
        ConcurrentMessageLimit = _concurrency;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ScoreRequestConsumer> consumerConfigurator, IRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpointConfigurator);
        ArgumentNullException.ThrowIfNull(context);

        // Plain JSON from any language (content type application/json, or none); MassTransit envelopes still work.
        endpointConfigurator.UseRawJsonDeserializer(RawSerializerOptions.All, isDefault: true);

        // Producers send to the queue; no exchange per message type is bound to it (several deployments may share a broker).
        endpointConfigurator.ConfigureConsumeTopology = false;

        // Hold many small messages at once: the batcher needs them in memory to form large batches.
        endpointConfigurator.PrefetchCount = _concurrency;
        endpointConfigurator.ConcurrentMessageLimit = _concurrency;

        // A body that parses as JSON but not as a ScoreRequest is answered 'rejected' before it faults.
        // Resolved on first use: ScoreRequestReplies needs IBus, which is being built while endpoints are configured.
        // A "pre" pipe filter runs before the message is deserialized as a ScoreRequest (UseFilter would run after).
        endpointConfigurator.AddPrePipeSpecification(
            new FilterPipeSpecification<ConsumeContext>(new ScoreRequestParseFilter(() => context.GetRequiredService<ScoreRequestReplies>())));
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Ignore<ScoreRequestRejectedException>();
            r.Intervals(200, 1_000);
        });
    }
}

/// <summary>
/// Turns a body that is JSON but does not deserialize as a <see cref="ScoreRequest"/> (wrong types, missing
/// required fields) into a rejection: reads what it can (requestId, replyTo, correlationId, model.name) to answer,
/// then faults with <see cref="ScoreRequestRejectedException"/> so the message lands in the error queue.
/// </summary>
internal sealed class ScoreRequestParseFilter(Func<ScoreRequestReplies> replies) : IFilter<ConsumeContext>
{
    public async Task Send(ConsumeContext context, IPipe<ConsumeContext> next)
    {
        try
        {
            await next.Send(context);
        }
        catch (Exception ex) when (FindJsonError(ex) is { } json)
        {
            var error = $"Invalid request: the body does not match the ScoreRequest schema: {json.Message}";
            var (requestId, modelName, replyTo, correlationId) = ReadWhatWeCan(context);
            var completed = new ScoreRequestCompleted
            {
                RequestId = requestId ?? "",
                CorrelationId = correlationId,
                Model = new ScoredModel(modelName ?? "", null),
                Outcome = ScoreRequestOutcome.Rejected,
                Error = error,
                CompletedAt = DateTimeOffset.UtcNow,
            };
            await replies().AnswerAsync(context, completed, replyTo, context.CancellationToken);
            throw new ScoreRequestRejectedException(error, ex);
        }
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("scoreRequestParse");

    private static JsonException? FindJsonError(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is JsonException json)
            {
                return json;
            }
        }

        return null;
    }

    private static (string? RequestId, string? ModelName, string? ReplyTo, string? CorrelationId) ReadWhatWeCan(ConsumeContext context)
    {
        try
        {
            using var document = JsonDocument.Parse(context.ReceiveContext.Body.GetBytes());
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return default;
            }

            // A MassTransit envelope carries the request under "message".
            if (Property(root, "message") is { ValueKind: JsonValueKind.Object } inner && Property(root, "messageType") is not null)
            {
                root = inner;
            }

            var model = Property(root, "model");
            return (
                Scalar(Property(root, "requestId")),
                model is { ValueKind: JsonValueKind.Object } m ? Scalar(Property(m, "name")) : null,
                Scalar(Property(root, "replyTo")),
                Scalar(Property(root, "correlationId")));
        }
        catch (JsonException)
        {
            return default;
        }
    }

    private static JsonElement? Property(JsonElement element, string name)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return property.Value;
            }
        }

        return null;
    }

    private static string? Scalar(JsonElement? element) => element switch
    {
        { ValueKind: JsonValueKind.String } e => e.GetString(),
        { ValueKind: JsonValueKind.Number } e => e.GetRawText(),
        _ => null,
    };
}
