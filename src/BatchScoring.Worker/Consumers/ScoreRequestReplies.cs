using BatchScoring.Contracts;
using MassTransit;
using MassTransit.Serialization;

namespace BatchScoring.Worker.Consumers;

/// <summary>
/// Delivers a <see cref="ScoreRequestCompleted"/>: always published as an event (MassTransit envelope, exchange
/// <c>BatchScoring.Contracts:ScoreRequestCompleted</c>); and also
/// <list type="bullet">
/// <item>to a MassTransit request client (envelope with requestId/responseAddress) as its response;</item>
/// <item>to a reply queue given by name (field <c>replyTo</c>, else the AMQP <c>reply_to</c> property) as plain JSON,
/// published to the default exchange with the queue name as routing key (no queue is declared, so exclusive or
/// auto-delete reply queues and <c>amq.rabbitmq.reply-to</c> work), with content type <c>application/json</c> and
/// the AMQP <c>correlation_id</c> set from the request;</item>
/// <item>to a reply address given as a URI (<c>queue:name</c>, <c>exchange:name</c>, <c>rabbitmq://…</c>) in a MassTransit envelope.</item>
/// </list>
/// </summary>
public sealed class ScoreRequestReplies(IBus bus)
{
    // "exchange:amq.rabbitmq.reply-to" makes MassTransit publish to the default exchange ("") with our routing key and declare nothing.
    private static readonly Uri DefaultExchange = new("exchange:amq.rabbitmq.reply-to");
    private static readonly SystemTextJsonRawMessageSerializer RawJson = new(RawSerializerOptions.AddTransportHeaders);

    public async Task AnswerAsync(ConsumeContext context, ScoreRequestCompleted completed, string? replyTo, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(completed);
        var amqp = context.ReceiveContext.TryGetPayload(out RabbitMqBasicConsumeContext? rabbit) ? rabbit.Properties : null;
        if (completed.CorrelationId is null && !string.IsNullOrEmpty(amqp?.CorrelationId))
        {
            completed = completed with { CorrelationId = amqp.CorrelationId };
        }

        await context.Publish(completed, cancellationToken);

        if (context.RequestId is not null && context.ResponseAddress is not null)
        {
            await context.RespondAsync(completed);
            return;
        }

        replyTo = string.IsNullOrWhiteSpace(replyTo) ? amqp?.ReplyTo : replyTo.Trim();
        if (string.IsNullOrWhiteSpace(replyTo))
        {
            return;
        }

        if (replyTo.Contains(':', StringComparison.Ordinal) && Uri.TryCreate(replyTo, UriKind.Absolute, out var address))
        {
            var endpoint = await bus.GetSendEndpoint(address);
            await endpoint.Send(completed, cancellationToken);
            return;
        }

        var queue = replyTo;
        var correlationId = completed.CorrelationId;
        var defaultExchange = await bus.GetSendEndpoint(DefaultExchange);
        await defaultExchange.Send(
            completed,
            send =>
            {
                send.SetRoutingKey(queue);
                send.Serializer = RawJson;
                if (correlationId is not null && send.TryGetPayload(out RabbitMqSendContext? rabbitSend))
                {
                    rabbitSend.BasicProperties.CorrelationId = correlationId;
                }
            },
            cancellationToken);
    }
}
