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
}
