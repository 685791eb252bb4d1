using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchScoring.Contracts;
using Microsoft.Extensions.Logging;
using BatchScoring.Worker.Requests.Transport;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.Worker.Requests.Answers;

/// <summary>Where the answer to one request goes besides the event.</summary>
internal sealed record AnswerRoute(string? ReplyTo, string? AmqpReplyTo, string? AmqpCorrelationId, Uri? ResponseAddress, string? EnvelopeRequestId, string? ConversationId);

/// <summary>
/// Publishes request-mode answers with publisher confirms, without MassTransit's per-message pipeline:
/// <list type="bullet">
/// <item>the <see cref="ScoreRequestCompleted"/> event, as a MassTransit envelope on the fanout exchange
/// <c>BatchScoring.Contracts:ScoreRequestCompleted</c> (so MassTransit consumers of the event receive it unchanged);</item>
/// <item>the reply to a queue named in <c>replyTo</c> (else the AMQP <c>reply_to</c>): plain JSON through the default
/// exchange, AMQP <c>correlation_id</c> set (no queue is declared, so exclusive and <c>amq.rabbitmq.reply-to</c> queues work);</item>
/// <item>the reply to a MassTransit address (<c>queue:name</c>, <c>exchange:name</c>, <c>rabbitmq://host/vhost/name</c>)
/// or to a MassTransit request client's response address: an envelope (with the client's requestId);</item>
/// <item>rejected or failed messages: the original body and properties to <c>score-requests_error</c>, with the reason
/// in the <c>MT-Fault-Message</c> header as MassTransit writes it.</item>
/// </list>
/// Exchange-addressed replies use their own channel: publishing to an exchange that does not exist closes the channel.
/// </summary>
internal sealed class RequestAnswerPublisher(IConnection connection, Uri brokerAddress, string queue, ILogger logger) : IAsyncDisposable
{
    public const string EventExchange = "BatchScoring.Contracts:ScoreRequestCompleted";
    private const string EnvelopeContentType = "application/vnd.masstransit+json";
    private const string MessageType = "urn:message:BatchScoring.Contracts:ScoreRequestCompleted";

    private static readonly CreateChannelOptions AddressChannelOptions = new(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true);
    private readonly SemaphoreSlim _addressChannelLock = new(1, 1);
    private readonly string _sourceAddress = Address(brokerAddress, queue);
    private readonly string _eventAddress = Address(brokerAddress, EventExchange);

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_envelopeBuffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_envelopeWriter;

    private ConfirmedPublisher? _publisher;
    private IChannel? _addressChannel;

    public string ErrorQueue => queue + "_error";

    /// <summary>Declares what answers are published to: the event exchange and the error queue (with its exchange, as MassTransit names them).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _publisher = await ConfirmedPublisher.CreateAsync(connection, logger, cancellationToken);
        var channel = _publisher.Channel;
        await channel.ExchangeDeclareAsync(EventExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.ExchangeDeclareAsync(ErrorQueue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(ErrorQueue, durable: true, exclusive: false, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(ErrorQueue, ErrorQueue, "", cancellationToken: cancellationToken);
    }

    /// <summary>Publishes the event and sends the reply; completes when the broker confirmed both.</summary>
    public async Task AnswerAsync(ScoreRequestCompleted completed, AnswerRoute route, CancellationToken cancellationToken)
    {
        if (completed.CorrelationId is null && !string.IsNullOrEmpty(route.AmqpCorrelationId))
        {
            completed = completed with { CorrelationId = route.AmqpCorrelationId };
        }

        // Both are in flight before either is awaited; their tasks always complete (confirm, nack or channel loss).
        var message = ScoreRequestCompletedJson.Serialize(completed);
        var published = PublishEvent(message, route);
        var replied = Reply(message, completed.CorrelationId, route, cancellationToken);
        await published;
        await replied;
    }

    /// <summary>Moves a message that will not be scored to the error queue: its body and properties, and the reason.</summary>
    public async Task MoveToErrorQueueAsync(ReadOnlyMemory<byte> body, IReadOnlyBasicProperties original, string reason, Exception? exception, CancellationToken cancellationToken)
    {
        var headers = original.Headers is null ? new Dictionary<string, object?>() : new Dictionary<string, object?>(original.Headers);
        headers["MT-Reason"] = "fault";
        headers["MT-Fault-Message"] = reason;
        headers["MT-Fault-ExceptionType"] = exception?.GetType().FullName ?? "BatchScoring.Application.Requests.ScoreRequestRejectedException";
        headers["MT-Fault-Timestamp"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        headers["MT-Fault-InputAddress"] = _sourceAddress;
        headers["MT-Host-MachineName"] = HostProcess.MachineName;
        if (exception is not null)
        {
            headers["MT-Fault-StackTrace"] = exception.ToString();
        }

        var properties = new BasicProperties(original)
        {
            Headers = headers,
            DeliveryMode = DeliveryModes.Persistent,
        };
        await Publisher.PublishAsync(ErrorQueue, "", properties, body).WaitAsync(cancellationToken);
    }

    private ConfirmedPublisher Publisher => _publisher ?? throw new InvalidOperationException("The answer publisher was not started.");

    // MassTransit's own id generator: time-ordered and unique like its message ids, without the kernel call per id
    // that made Guid.NewGuid 4% of request mode's CPU (docs/decisions/ADR-007).
    private static string NewMessageId() => MassTransit.NewId.NextGuid().ToString();

    private Task PublishEvent(byte[] message, AnswerRoute route)
    {
        var messageId = NewMessageId();
        var envelope = Envelope(message, messageId, _eventAddress, requestId: null, route.ConversationId);
        var properties = new BasicProperties { ContentType = EnvelopeContentType, MessageId = messageId, DeliveryMode = DeliveryModes.Persistent };
        return Publisher.PublishAsync(EventExchange, "", properties, envelope);
    }

    private Task Reply(byte[] message, string? correlationId, AnswerRoute route, CancellationToken cancellationToken)
    {
        if (route.ResponseAddress is not null && route.EnvelopeRequestId is not null)
        {
            return SendEnvelopeAsync(route.ResponseAddress, message, route, cancellationToken);
        }

        var replyTo = string.IsNullOrWhiteSpace(route.ReplyTo) ? route.AmqpReplyTo : route.ReplyTo.Trim();
        if (string.IsNullOrWhiteSpace(replyTo))
        {
            return Task.CompletedTask;
        }

        if (replyTo.Contains(':', StringComparison.Ordinal) && Uri.TryCreate(replyTo, UriKind.Absolute, out var address))
        {
            return SendEnvelopeAsync(address, message, route, cancellationToken);
        }

        var properties = new BasicProperties { ContentType = "application/json", CorrelationId = correlationId, DeliveryMode = DeliveryModes.Transient };
        return Publisher.PublishAsync("", replyTo, properties, message);
    }

    /// <summary>An envelope to a MassTransit address: <c>queue:name</c> goes through the default exchange, anything else to the exchange it names.</summary>
    private async Task SendEnvelopeAsync(Uri address, byte[] message, AnswerRoute route, CancellationToken cancellationToken)
    {
        var messageId = NewMessageId();
        var envelope = Envelope(message, messageId, address.ToString(), route.EnvelopeRequestId, route.ConversationId);
        var properties = new BasicProperties { ContentType = EnvelopeContentType, MessageId = messageId, DeliveryMode = DeliveryModes.Persistent };
        if (address.Scheme == "queue")
        {
            await Publisher.PublishAsync("", address.AbsolutePath, properties, envelope).WaitAsync(cancellationToken);
            return;
        }

        var exchange = address.Scheme == "exchange" ? address.AbsolutePath : address.AbsolutePath.TrimEnd('/').Split('/')[^1];
        await _addressChannelLock.WaitAsync(cancellationToken);
        IChannel channel;
        try
        {
            channel = _addressChannel is { IsOpen: true } open ? open : _addressChannel = await connection.CreateChannelAsync(AddressChannelOptions, cancellationToken);
        }
        finally
        {
            _addressChannelLock.Release();
        }

        try
        {
            await channel.BasicPublishAsync(Uri.UnescapeDataString(exchange), "", mandatory: false, properties, envelope, cancellationToken);
        }
        catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException or PublishException)
        {
            // Typically a request client that went away (its exchange is gone); the event still carries the answer.
            logger.ReplyFailed(address, ex.Message);
        }
    }

    /// <summary>A MassTransit envelope around an already serialized message.</summary>
    private byte[] Envelope(byte[] message, string messageId, string destination, string? requestId, string? conversationId)
    {
        var buffer = t_envelopeBuffer ??= new ArrayBufferWriter<byte>(2048);
        buffer.ResetWrittenCount();
        var writer = t_envelopeWriter ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        writer.WriteStartObject();
        writer.WriteString("messageId", messageId);
        if (requestId is not null)
        {
            writer.WriteString("requestId", requestId);
        }

        if (conversationId is not null)
        {
            writer.WriteString("conversationId", conversationId);
        }

        writer.WriteString("sourceAddress", _sourceAddress);
        writer.WriteString("destinationAddress", destination);
        writer.WriteStartArray("messageType");
        writer.WriteStringValue(MessageType);
        writer.WriteEndArray();
        writer.WritePropertyName("message");
        writer.WriteRawValue(message, skipInputValidation: true);
        writer.WriteString("sentTime", DateTimeOffset.UtcNow);
        writer.WriteStartObject("headers");
        writer.WriteEndObject();
        writer.WriteStartObject("host");
        writer.WriteString("machineName", HostProcess.MachineName);
        writer.WriteString("processName", HostProcess.Name);
        writer.WriteNumber("processId", Environment.ProcessId);
        writer.WriteString("assembly", "BatchScoring.Worker");
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A MassTransit-style address: rabbitmq://host:port/[vhost/]name.</summary>
    private static string Address(Uri broker, string name)
    {
        var vhost = Uri.UnescapeDataString(broker.AbsolutePath.Trim('/'));
        var builder = new StringBuilder("rabbitmq://").Append(broker.Host);
        if (!broker.IsDefaultPort && broker.Port > 0)
        {
            builder.Append(':').Append(broker.Port.ToString(CultureInfo.InvariantCulture));
        }

        builder.Append('/');
        if (vhost.Length > 0 && vhost != "/")
        {
            builder.Append(Uri.EscapeDataString(vhost)).Append('/');
        }

        return builder.Append(name).ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (_publisher is not null)
        {
            await _publisher.DisposeAsync();
        }

        await Quietly.CloseAsync(_addressChannel);

        _addressChannelLock.Dispose();
    }

    /// <summary>Read once: Environment.MachineName is a system call each time.</summary>
    private static class HostProcess
    {
        public static readonly string Name = Process.GetCurrentProcess().ProcessName;

        public static readonly string MachineName = Environment.MachineName;
    }
}
