using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using BatchScoring.IntegrationTests.Infrastructure;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace BatchScoring.IntegrationTests.Requests;

/// <summary>A reply as a non-.NET client sees it: the raw body parsed as JSON, and the AMQP properties.</summary>
public sealed record RawReply(JsonElement Body, string? ContentType, string? CorrelationId);

/// <summary>
/// What a Python/Node producer does, with RabbitMQ.Client and no MassTransit: publish plain JSON to the default
/// exchange (routing key = queue), consume replies from an exclusive, server-named queue, read an error queue.
/// </summary>
public sealed class RawAmqpClient : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly Channel<RawReply> _replies = Channel.CreateUnbounded<RawReply>();

    private RawAmqpClient(IConnection connection, IChannel channel, string replyQueue)
    {
        _connection = connection;
        _channel = channel;
        ReplyQueue = replyQueue;
    }

    /// <summary>Exclusive, auto-delete queue the client reads replies from.</summary>
    public string ReplyQueue { get; }

    /// <summary>
    /// Messages this answers false for are skipped by <see cref="ReceiveAsync"/> and <see cref="ExpectNothingAsync"/>:
    /// a message type's fanout exchange reaches every concurrent test (and test run) listening to it.
    /// </summary>
    public Func<RawReply, bool>? Accept { get; set; }

    public static async Task<RawAmqpClient> ConnectAsync(string uri, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = new Uri(uri) };
        var connection = await factory.CreateConnectionAsync(cancellationToken);
        var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        var queue = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
        var client = new RawAmqpClient(connection, channel, queue.QueueName);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            using var document = JsonDocument.Parse(delivery.Body);
            client._replies.Writer.TryWrite(new RawReply(document.RootElement.Clone(), delivery.BasicProperties.ContentType, delivery.BasicProperties.CorrelationId));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue.QueueName, autoAck: true, consumer, cancellationToken);
        return client;
    }

    /// <summary>Also receives what is published to a fanout exchange (declared as MassTransit declares a message type's exchange).</summary>
    public async Task ListenToAsync(string exchange, CancellationToken cancellationToken)
    {
        await _channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await _channel.QueueBindAsync(ReplyQueue, exchange, "", cancellationToken: cancellationToken);
    }

    /// <summary>Publishes <paramref name="json"/> as is (content type application/json) to <paramref name="queue"/>; the broker must route it.</summary>
    public async Task PublishAsync(string queue, string json, CancellationToken cancellationToken, string? replyTo = null, string? correlationId = null)
    {
        var properties = new BasicProperties { ContentType = "application/json", DeliveryMode = DeliveryModes.Persistent };
        if (replyTo is not null)
        {
            properties.ReplyTo = replyTo;
        }

        if (correlationId is not null)
        {
            properties.CorrelationId = correlationId;
        }

        await _channel.BasicPublishAsync("", queue, mandatory: true, properties, Encoding.UTF8.GetBytes(json), cancellationToken);
    }

    public Task PublishAsync(string queue, object request, CancellationToken cancellationToken) =>
        PublishAsync(queue, JsonSerializer.Serialize(request), cancellationToken);

    /// <summary>
    /// Takes the next message of <paramref name="queue"/> and rejects it back to the queue, as a consumer that died
    /// unacknowledged would: the broker delivers it again with the redelivered flag.
    /// </summary>
    public async Task BounceAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var message = await _channel.BasicGetAsync(queue, autoAck: false, cancellationToken);
        while (message is null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"nothing to take from {queue} within {timeout}");
            await Task.Delay(50, cancellationToken);
            message = await _channel.BasicGetAsync(queue, autoAck: false, cancellationToken);
        }

        await _channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: true, cancellationToken);
    }

    /// <summary>Messages ready in <paramref name="queue"/> (delivered but unacknowledged ones not counted).</summary>
    public async Task<uint> ReadyAsync(string queue, CancellationToken cancellationToken) =>
        (await _channel.QueueDeclarePassiveAsync(queue, cancellationToken)).MessageCount;

    /// <summary>Waits until every message of <paramref name="queue"/> has been delivered to a consumer (none left ready).</summary>
    public Task WaitUntilDeliveredAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken) =>
        Poll.UntilAsync(async () => await ReadyAsync(queue, cancellationToken) == 0, timeout, $"{queue} to be taken by its consumers", cancellationToken, TimeSpan.FromMilliseconds(20));

    /// <summary>Fails when anything arrives within <paramref name="wait"/>.</summary>
    public async Task ExpectNothingAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        await Task.Delay(wait, cancellationToken); // the quiet window is what is asserted
        while (_replies.Reader.TryRead(out var extra))
        {
            Assert.False(Accept?.Invoke(extra) ?? true, $"unexpected message: {extra.Body.GetRawText()}");
        }
    }

    /// <summary>Waits for <paramref name="count"/> replies.</summary>
    public async Task<List<RawReply>> ReceiveAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var replies = new List<RawReply>(count);
        try
        {
            while (replies.Count < count)
            {
                var reply = await _replies.Reader.ReadAsync(limit.Token);
                if (Accept?.Invoke(reply) ?? true)
                {
                    replies.Add(reply);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Assert.Fail($"Only {replies.Count} of {count} replies within {timeout}: {string.Join(" | ", replies.Select(r => r.Body.GetRawText()))}");
        }

        return replies;
    }

    /// <summary>Takes every message in <paramref name="queue"/> (waiting until at least <paramref name="atLeast"/> arrived): bodies and the MT-Fault-Message header.</summary>
    public async Task<List<(string Body, string? FaultMessage)>> DrainAsync(string queue, int atLeast, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var messages = new List<(string, string?)>();
        var deadline = DateTime.UtcNow + timeout;

        // MassTransit declares <queue>_error on the first fault: wait for it on a throw-away channel (a 404 closes the channel).
        while (true)
        {
            await using var probe = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
            try
            {
                await probe.QueueDeclarePassiveAsync(queue, cancellationToken);
                break;
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, cancellationToken);
            }
        }

        while (true)
        {
            var message = await _channel.BasicGetAsync(queue, autoAck: true, cancellationToken);
            if (message is not null)
            {
                string? fault = null;
                if (message.BasicProperties.Headers?.TryGetValue("MT-Fault-Message", out var value) == true)
                {
                    fault = value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : value?.ToString();
                }

                messages.Add((Encoding.UTF8.GetString(message.Body.Span), fault));
                continue;
            }

            if (messages.Count >= atLeast || DateTime.UtcNow > deadline)
            {
                return messages;
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.CloseAsync();
        await _channel.DisposeAsync();
        await _connection.CloseAsync();
        await _connection.DisposeAsync();
    }
}
