using MassTransit;

namespace BatchScoring.Application;

/// <summary>
/// Publishing that does not wait for a bus that lost RabbitMQ: MassTransit holds a publish until the broker confirms it,
/// which with the broker down means until it reconnects, and the callers (a consume, an HTTP request, a scheduled fire,
/// the reconciler) must not wait that long. Each caller keeps what was not confirmed for a later try.
/// </summary>
internal static class BoundedPublish
{
    /// <summary>How long a publish waits for the broker's confirmation.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Publishes <paramref name="message"/>; null once the broker confirmed it, else why it did not (it failed, timed
    /// out, or <paramref name="cancellationToken"/> was cancelled: the caller checks its token).
    /// </summary>
    public static async Task<string?> TryPublishAsync<T>(
        this IPublishEndpoint endpoint, T message, CancellationToken cancellationToken, Action<PublishContext<T>>? configure = null)
        where T : class
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            if (configure is null)
            {
                await endpoint.Publish(message, timeout.Token);
            }
            else
            {
                await endpoint.Publish(message, configure, timeout.Token);
            }

            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || timeout.IsCancellationRequested)
        {
            return ex is OperationCanceledException && !cancellationToken.IsCancellationRequested
                ? $"the broker did not confirm it within {Timeout.TotalSeconds:0} s"
                : ex.Message;
        }
    }
}
