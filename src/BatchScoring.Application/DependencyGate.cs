namespace BatchScoring.Application;

/// <summary>
/// Opens once PostgreSQL and RabbitMQ have both answered (and migrations, if asked for, are applied). Services that
/// need the broker or the database at start-up wait on it, so a role starts, serves liveness and reports "not ready"
/// while its dependencies are down, instead of exiting. The host's dependency waiter opens it.
/// </summary>
public sealed class DependencyGate
{
    /// <summary>The longest pause between two tries of a service waiting for PostgreSQL or RabbitMQ.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(3);

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsReady => _ready.Task.IsCompletedSuccessfully;

    /// <summary>What the gate is waiting for (shown by the readiness check).</summary>
    public string Waiting { get; set; } = "start-up";

    public Task WhenReady(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    public void Open() => _ready.TrySetResult();

    /// <summary>
    /// Once the gate is open, runs <paramref name="start"/> until it succeeds: after a failure that
    /// <paramref name="transient"/> accepts, reports it to <paramref name="retrying"/> and tries again (0.5 s doubling to
    /// <see cref="MaxRetryDelay"/>). Ends quietly when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async Task StartWhenReachableAsync(
        Func<CancellationToken, Task> start, Func<Exception, bool> transient, Func<Exception, TimeSpan, Task> retrying, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(transient);
        ArgumentNullException.ThrowIfNull(retrying);
        try
        {
            await WhenReady(cancellationToken);
            for (var delay = TimeSpan.FromMilliseconds(500); ; delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks)))
            {
                try
                {
                    await start(cancellationToken);
                    return;
                }
                catch (Exception ex) when (transient(ex) && !cancellationToken.IsCancellationRequested)
                {
                    await retrying(ex, delay);
                    await Task.Delay(delay, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping before the dependency came back
        }
    }
}
