using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// Acknowledges a consumer channel's deliveries with as few frames as possible. Requests finish out of order
/// (different models, batch sizes); a single <c>basic.ack multiple</c> covers the longest run of finished deliveries
/// from the oldest unsettled one, so one frame settles a whole batch instead of one frame per message (the broker's
/// queue process handles every ack frame, and at thousands of requests a second that is a visible share of its work).
/// Deliveries that must come back are requeued one by one. A channel that closes starts a new generation: settlements
/// for deliveries of the old one are dropped (the broker redelivers those messages).
/// </summary>
internal sealed class DeliverySettler
{
    private readonly IChannel _channel;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Queue<ulong> _unsettled = new();
    private readonly HashSet<ulong> _finished = [];
    private readonly Channel<Settlement> _settlements = System.Threading.Channels.Channel.CreateUnbounded<Settlement>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private long _generation;

    public DeliverySettler(IChannel channel, ILogger logger)
    {
        _channel = channel;
        _logger = logger;
        _channel.ChannelShutdownAsync += (_, _) =>
        {
            lock (_lock)
            {
                _generation++;
                _unsettled.Clear();
                _finished.Clear();
            }

            return Task.CompletedTask;
        };
        _loop = Task.Run(SettleLoopAsync);
    }

    /// <summary>Records a delivery (in delivery order); returns the generation to settle it with.</summary>
    public long Received(ulong deliveryTag)
    {
        lock (_lock)
        {
            _unsettled.Enqueue(deliveryTag);
            return _generation;
        }
    }

    public void Ack(long generation, ulong deliveryTag) => _settlements.Writer.TryWrite(new Settlement(generation, deliveryTag, Requeue: false));

    /// <summary>Returns the message to the queue (it is delivered again, here or to another worker).</summary>
    public void Requeue(long generation, ulong deliveryTag) => _settlements.Writer.TryWrite(new Settlement(generation, deliveryTag, Requeue: true));

    /// <summary>Sends what is settled so far and stops.</summary>
    public async Task CompleteAsync()
    {
        _settlements.Writer.TryComplete();
        await _loop;
    }

    private async Task SettleLoopAsync()
    {
        var requeue = new List<ulong>();
        while (await _settlements.Reader.WaitToReadAsync())
        {
            ulong? ackUpTo = null;
            requeue.Clear();
            lock (_lock)
            {
                while (_settlements.Reader.TryRead(out var settlement))
                {
                    if (settlement.Generation != _generation)
                    {
                        continue;
                    }

                    _finished.Add(settlement.DeliveryTag);
                    if (settlement.Requeue)
                    {
                        requeue.Add(settlement.DeliveryTag);
                    }
                }

                while (_unsettled.TryPeek(out var oldest) && _finished.Remove(oldest))
                {
                    _unsettled.Dequeue();
                    ackUpTo = oldest;
                }
            }

            try
            {
                // Requeue first: the multiple ack below must not cover a delivery that is to come back.
                foreach (var tag in requeue)
                {
                    await _channel.BasicNackAsync(tag, multiple: false, requeue: true);
                }

                if (ackUpTo is { } upTo)
                {
                    await _channel.BasicAckAsync(upTo, multiple: true);
                }
            }
            catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException or IOException)
            {
                // The channel closed (connection lost): its unacknowledged messages are delivered again.
                _logger.SettleFailed(ex.Message);
            }
        }
    }

    private sealed record Settlement(long Generation, ulong DeliveryTag, bool Requeue);
}
