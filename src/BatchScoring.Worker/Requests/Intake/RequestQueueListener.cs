using System.Diagnostics;
using System.Threading.Channels;
using BatchScoring.Application;
using BatchScoring.Worker.Requests.Answers;
using BatchScoring.Worker.Requests.Transport;
using BatchScoring.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// Request mode's consumer of queue <c>score-requests</c>, on the RabbitMQ client directly rather than a MassTransit
/// consumer: with single-row requests the per-message pipeline (envelope handling, scope, retry and concurrency
/// filters, a JSON round trip through a dictionary) cost more than scoring a row, and dynamic batching could not pay
/// off. Each delivery is read in one pass (<see cref="ScoreRequestReader"/>), handed to the model version's batcher, and
/// acknowledged only after its rows are written and its answer is confirmed by the broker (at-least-once).
/// Invalid requests are answered <c>rejected</c> and moved to <c>score-requests_error</c> with the reason; a request
/// that keeps failing for infrastructure reasons (database down) is retried, then moved there too.
/// </summary>
internal sealed class RequestQueueListener(
    RequestScoringService service,
    RedeliveryCounter redeliveries,
    IOptions<RequestBatchingOptions> batching,
    IOptions<BatchScoringOptions> options,
    IConfiguration configuration,
    DependencyGate gate,
    ILogger<RequestQueueListener> logger) : IHostedService, IAsyncDisposable
{
    /// <summary>Interval between the client's reconnection attempts after the broker was lost (its default is 5 s).</summary>
    public static readonly TimeSpan RecoveryInterval = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1)];
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(20);

    private readonly string _queue = options.Value.QueueName(RequestBatchingOptions.QueueName);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IConnection? _connection;
    private IChannel? _consumerChannel;
    private RequestAnswerPublisher? _answers;
    private string? _consumerTag;
    private DeliverySettler? _settler;
    private int _inFlight;
    private bool _stopRequested;
    private Task? _pendingStart;

    /// <summary>True once consuming; the client's automatic recovery keeps it so across broker restarts.</summary>
    public bool IsConsuming => _consumerTag is not null && _connection is { IsOpen: true };

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (gate.IsReady)
        {
            try
            {
                await ConnectAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (IsUnreachable(ex))
            {
                logger.BrokerUnreachableAtStart(ex.Message);
                await ResetAsync();
            }
        }

        _pendingStart = Task.Run(() => ConnectWhenReachableAsync(_stopping.Token), CancellationToken.None);
    }

    private Task ConnectWhenReachableAsync(CancellationToken cancellationToken) =>
        gate.StartWhenReachableAsync(ConnectAsync, IsUnreachable, async (ex, delay) =>
        {
            logger.BrokerUnreachable(ex.Message, delay.TotalSeconds);
            await ResetAsync();
        }, cancellationToken);

    private static bool IsUnreachable(Exception ex) =>
        ex is BrokerUnreachableException or IOException or OperationInterruptedException or AlreadyClosedException or System.Net.Sockets.SocketException or TimeoutException;

    private async Task ResetAsync()
    {
        if (_answers is not null)
        {
            await _answers.DisposeAsync();
            _answers = null;
        }

        await Quietly.CloseAsync(_consumerChannel);
        await Quietly.CloseAsync(_connection);
        _consumerChannel = null;
        _connection = null;
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var uri = new Uri(configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq));
        var factory = new ConnectionFactory
        {
            Uri = uri,
            ClientProvidedName = $"batchscoring-requests:{Environment.MachineName}",
            AutomaticRecoveryEnabled = true,
            TopologyRecoveryEnabled = true,
            NetworkRecoveryInterval = RecoveryInterval,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
            SocketFactory = CoalescingTcpClient.Create,
        };
        _connection = await factory.CreateConnectionAsync(cancellationToken);
        _answers = new RequestAnswerPublisher(_connection, uri, _queue, logger);
        await _answers.StartAsync(cancellationToken);

        _consumerChannel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
        // The same topology MassTransit declares for a receive endpoint, so producers may use either the queue or its exchange.
        await _consumerChannel.ExchangeDeclareAsync(_queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await _consumerChannel.QueueDeclareAsync(
            _queue, durable: true, exclusive: false, autoDelete: false, arguments: options.Value.QueueArguments(), cancellationToken: cancellationToken);
        await _consumerChannel.QueueBindAsync(_queue, _queue, "", cancellationToken: cancellationToken);

        // Hold many small messages at once: the batcher needs them in memory to form large batches.
        await _consumerChannel.BasicQosAsync(0, (ushort)Math.Min(service.Options.ConsumerConcurrency, ushort.MaxValue), global: false, cancellationToken);
        _settler = new DeliverySettler(_consumerChannel, logger);

        var consumer = new AsyncEventingBasicConsumer(_consumerChannel);
        consumer.ReceivedAsync += OnReceivedAsync;
        _consumerTag = await _consumerChannel.BasicConsumeAsync(_queue, autoAck: false, consumer, cancellationToken);
        logger.Consuming(_queue, service.Options.ConsumerConcurrency, service.Options.MaxBatchRows, service.Options.MaxQueueDelayMs, _answers.ErrorQueue);
    }

    private Task OnReceivedAsync(object sender, BasicDeliverEventArgs delivery)
    {
        if (delivery.BasicProperties.IsTimestampPresent())
        {
            var sent = DateTimeOffset.FromUnixTimeSeconds(delivery.BasicProperties.Timestamp.UnixTime);
            ScoringMetrics.QueueWaitSeconds.Record(Math.Max(0, (DateTimeOffset.UtcNow - sent).TotalSeconds), ScoringMetrics.ModeTag("request"));
        }

        // The body buffer is only valid during this call: keep a copy for the error queue.
        var body = delivery.Body.ToArray();
        var read = ScoreRequestReader.Read(body);
        Interlocked.Increment(ref _inFlight);
        var generation = _settler!.Received(delivery.DeliveryTag);
        _ = HandleAsync(body, read, delivery.BasicProperties, new Delivery(generation, delivery.DeliveryTag, Stopwatch.GetTimestamp(), delivery.Redelivered));
        return Task.CompletedTask;
    }

    private async Task HandleAsync(byte[] body, ReadScoreRequest read, IReadOnlyBasicProperties properties, Delivery delivery)
    {
        using var activity = RequestTracing.Start(properties, read);
        var route = new AnswerRoute(read.ReplyTo, properties.ReplyTo, properties.CorrelationId, read.ResponseAddress, read.EnvelopeRequestId, read.ConversationId);
        var cancellationToken = _stopping.Token;
        var outcome = ScoringMetrics.RequestFailedOutcome;
        try
        {
            if (read.Request is not { } request)
            {
                var rejected = RequestAnswers.Create(read.RequestId, read.CorrelationId, new ScoredModel(read.ModelName ?? "", null), ScoreRequestOutcome.Rejected, read.Error);
                await Answers.AnswerAsync(rejected, route, cancellationToken);
                await Answers.MoveToErrorQueueAsync(body, properties, read.Error!, null, cancellationToken);
                outcome = ScoreRequestOutcome.Rejected;
            }
            else if (delivery.Redelivered && await RedeliveryLimitReasonAsync(request, cancellationToken) is { } tooOften)
            {
                // A request that keeps coming back unacknowledged may be what kills its workers: stop handing it out.
                logger.RedeliveryLimitReached(tooOften, Answers.ErrorQueue);
                var dropped = RequestAnswers.Create(request, new ScoredModel(request.Model.Name, null), ScoreRequestOutcome.Rejected, tooOften);
                await Answers.AnswerAsync(dropped, route, cancellationToken);
                await Answers.MoveToErrorQueueAsync(body, properties, tooOften, null, cancellationToken);
                outcome = ScoreRequestOutcome.Rejected;
            }
            else if (await ScoreWithRetryAsync(request, body, properties, delivery.Redelivered, cancellationToken) is { } completed)
            {
                await Answers.AnswerAsync(completed, route, cancellationToken);
                if (completed.Outcome == ScoreRequestOutcome.Rejected)
                {
                    await Answers.MoveToErrorQueueAsync(body, properties, completed.Error ?? "Invalid request.", null, cancellationToken);
                }

                outcome = completed.Outcome;
            }

            _settler!.Ack(delivery.Generation, delivery.Tag);
            ScoringMetrics.RequestFinished(outcome, Stopwatch.GetElapsedTime(delivery.ReceivedAt));
            activity?.SetTag("batchscoring.request_outcome", outcome);
        }
        catch (Exception ex) when (ex is OperationCanceledException or OperationInterruptedException or AlreadyClosedException or PublishException or IOException)
        {
            // The answer could not be confirmed (connection lost, shutting down): the message comes back and is answered again.
            if (!_stopping.IsCancellationRequested)
            {
                logger.ReturnedToQueue(delivery.Tag, ex.Message);
            }

            _settler!.Requeue(delivery.Generation, delivery.Tag);
        }
        finally
        {
            if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _stopRequested))
            {
                _drained.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Counts this redelivery; the reason to stop when the request has now come back more than
    /// <see cref="RequestBatchingOptions.MaxRedeliveries"/> times, else null. A database that cannot count lets it through.
    /// </summary>
    private async Task<string?> RedeliveryLimitReasonAsync(ScoreRequest request, CancellationToken cancellationToken)
    {
        int count;
        try
        {
            count = await redeliveries.CountAsync(request.RequestId, cancellationToken);
        }
        catch (NpgsqlException)
        {
            return null;
        }

        var limit = batching.Value.MaxRedeliveries;
        return count > limit
            ? $"Request {request.RequestId} was redelivered {count} times without being acknowledged (a worker may have died handling it); not tried again (BatchScoring:Requests:MaxRedeliveries = {limit})."
            : null;
    }

    /// <summary>Scores a request, retrying infrastructure failures; null when it was moved to the error queue instead.</summary>
    private async Task<ScoreRequestCompleted?> ScoreWithRetryAsync(
        ScoreRequest request, byte[] body, IReadOnlyBasicProperties properties, bool redelivered, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                // Redelivered: an earlier delivery may have committed rows before it died unacknowledged.
                return await service.ScoreAsync(request, cancellationToken, redelivered);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                if (attempt < RetryDelays.Length)
                {
                    logger.AttemptFailed(request.RequestId, attempt + 1, ex.Message);
                    await Task.Delay(RetryDelays[attempt], cancellationToken);
                    continue;
                }

                var reason = $"Request {request.RequestId} failed {attempt + 1} times: {ex.Message}";
                logger.MovedToErrorQueue(ex, reason, Answers.ErrorQueue);
                await Answers.MoveToErrorQueueAsync(body, properties, reason, ex, cancellationToken);
                return null;
            }
        }
    }

    private RequestAnswerPublisher Answers => _answers ?? throw new InvalidOperationException("The request listener was not started.");

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_pendingStart is { IsCompleted: false })
        {
            await _stopping.CancelAsync();
            await _pendingStart.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_consumerChannel is { IsOpen: true } channel && _consumerTag is not null)
        {
            try
            {
                await channel.BasicCancelAsync(_consumerTag, cancellationToken: cancellationToken);
            }
            catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException)
            {
                // connection already gone
            }
        }

        // Let requests already taken finish (their batches are being scored and written), then close.
        Volatile.Write(ref _stopRequested, true);
        if (Volatile.Read(ref _inFlight) == 0)
        {
            _drained.TrySetResult();
        }

        try
        {
            await _drained.Task.WaitAsync(DrainTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            logger.DrainTimedOut(Volatile.Read(ref _inFlight), DrainTimeout);
        }

        await _stopping.CancelAsync();
        if (_settler is not null)
        {
            await _settler.CompleteAsync();
        }
    }

    private readonly record struct Delivery(long Generation, ulong Tag, long ReceivedAt, bool Redelivered);

    public async ValueTask DisposeAsync()
    {
        if (_answers is not null)
        {
            await _answers.DisposeAsync();
        }

        await Quietly.CloseAsync(_consumerChannel);
        await Quietly.CloseAsync(_connection);

        _stopping.Dispose();
    }
}
