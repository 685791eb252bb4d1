using Microsoft.Extensions.Logging;

namespace BatchScoring.Worker.Requests;

/// <summary>
/// Request mode's log messages, source-generated: several run per message or per batch, where a template parsed
/// and arguments boxed on every call would cost. Event ids 3100–3199 belong to request mode.
/// </summary>
internal static partial class RequestModeLog
{
    [LoggerMessage(EventId = 3100, Level = LogLevel.Information,
        Message = "Request mode: consuming {Queue} (prefetch {Prefetch}; batches ≤ {Rows} rows / {Delay} ms; errors to {ErrorQueue})")]
    public static partial void Consuming(this ILogger logger, string queue, int prefetch, int rows, int delay, string errorQueue);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information,
        Message = "Request mode: model {Model} v{Version} batches up to {Rows} rows / {Delay} ms into {Table} (features: {Features})")]
    public static partial void LaneStarted(this ILogger logger, string model, int version, int rows, int delay, string table, string features);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Model {Model} v{Version}: {Error}; writing its request results to scoring.{Table}")]
    public static partial void ResultTableOfItsOwn(this ILogger logger, string model, int version, string error, string table);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "Model {Model} v{Version}: writing a batch of {Requests} request slices failed")]
    public static partial void BatchWriteFailed(this ILogger logger, Exception exception, string model, int version, int requests);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Information,
        Message = "Request {RequestId} redelivered: {Committed} rows were committed by an earlier delivery, {Remaining} left to score")]
    public static partial void Redelivered(this ILogger logger, string requestId, int committed, int remaining);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Warning, Message = "Request mode: RabbitMQ unreachable ({Error}); retrying in the background")]
    public static partial void BrokerUnreachableAtStart(this ILogger logger, string error);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Warning, Message = "Request mode: RabbitMQ unreachable ({Error}); retrying in {DelaySeconds} s")]
    public static partial void BrokerUnreachable(this ILogger logger, string error, double delaySeconds);

    [LoggerMessage(EventId = 3107, Level = LogLevel.Error, Message = "{Reason}; moved to {ErrorQueue}")]
    public static partial void RedeliveryLimitReached(this ILogger logger, string reason, string errorQueue);

    [LoggerMessage(EventId = 3110, Level = LogLevel.Warning, Message = "Request mode: message {DeliveryTag} returned to the queue: {Error}")]
    public static partial void ReturnedToQueue(this ILogger logger, ulong deliveryTag, string error);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "Request {RequestId}: attempt {Attempt} failed ({Error}); retrying")]
    public static partial void AttemptFailed(this ILogger logger, string requestId, int attempt, string error);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Error, Message = "{Reason}; moved to {ErrorQueue}")]
    public static partial void MovedToErrorQueue(this ILogger logger, Exception exception, string reason, string errorQueue);

    [LoggerMessage(EventId = 3113, Level = LogLevel.Warning, Message = "Request mode: {Count} requests still in flight after {Timeout}; they will be delivered again")]
    public static partial void DrainTimedOut(this ILogger logger, int count, TimeSpan timeout);

    [LoggerMessage(EventId = 3114, Level = LogLevel.Warning, Message = "Request mode: could not settle deliveries: {Error}")]
    public static partial void SettleFailed(this ILogger logger, string error);

    [LoggerMessage(EventId = 3120, Level = LogLevel.Warning, Message = "Request mode: publishing to '{Exchange}' failed: {Error}")]
    public static partial void PublishFailed(this ILogger logger, string exchange, string error);

    [LoggerMessage(EventId = 3121, Level = LogLevel.Warning, Message = "Request mode: could not reply to {Address}: {Error}")]
    public static partial void ReplyFailed(this ILogger logger, Uri address, string error);

    [LoggerMessage(EventId = 3130, Level = LogLevel.Information, Message = "Request mode: model {Model} v{Version} warmed ({Rows} rows in {Milliseconds} ms) before serving")]
    public static partial void WarmedUp(this ILogger logger, string model, int version, int rows, long milliseconds);

    [LoggerMessage(EventId = 3131, Level = LogLevel.Warning, Message = "Request mode: warm-up of model {Model} v{Version} failed: {Error}")]
    public static partial void WarmUpFailed(this ILogger logger, string model, int version, string error);

    [LoggerMessage(EventId = 3132, Level = LogLevel.Information, Message = "Request mode: alias {Alias} of model {Model} moved to v{Version} (canary: v{Canary}); warming it")]
    public static partial void AliasMoved(this ILogger logger, string model, string alias, int version, int? canary);

    [LoggerMessage(EventId = 3133, Level = LogLevel.Warning, Message = "Request mode: following alias moves failed ({Error}); retrying in {Delay}")]
    public static partial void AliasWatchFailed(this ILogger logger, string error, TimeSpan delay);
}
