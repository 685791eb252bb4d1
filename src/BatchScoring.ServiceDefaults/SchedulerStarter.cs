using BatchScoring.Application;
using BatchScoring.Application.Schedules;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// Starts the Quartz scheduler once PostgreSQL (its job store) answers and the database is migrated, retrying with a
/// capped backoff; stops it waiting for running jobs. When the dependencies answer at start-up it starts before the
/// host finishes starting. <see cref="SchedulerReadinessCheck"/> reports it until it runs.
/// </summary>
/// <remarks>
/// Until the database is migrated (<see cref="QuartzStore"/>) it retries like an unreachable database: a scheduler built
/// before that would have been shut down by Quartz for good, ready and firing nothing.
/// </remarks>
internal sealed class SchedulerStarter(QuartzStore store, DependencyGate gate, ILogger<SchedulerStarter> logger)
    : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private IScheduler? _scheduler;
    private Task? _pending;

    /// <summary>Null once the scheduler runs; else why it does not (yet).</summary>
    public string? NotRunning { get; private set; } = "not started yet";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        OperationsMetrics.EnsureReconcilerRegistered();
        if (gate.IsReady)
        {
            try
            {
                await StartSchedulerAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                NotRunning = ex.Message;
                logger.LogWarning("Scheduler: could not start ({Error}); retrying in the background", ex.Message);
            }
        }

        _pending = Task.Run(() => StartWhenReachableAsync(_stopping.Token), CancellationToken.None);
    }

    private Task StartWhenReachableAsync(CancellationToken cancellationToken) =>
        gate.StartWhenReachableAsync(StartSchedulerAsync, ex => ex is not OperationCanceledException, (ex, delay) =>
        {
            NotRunning = ex.Message;
            logger.LogWarning("Scheduler: could not start ({Error}); retrying in {Delay:0.#} s", ex.Message, delay.TotalSeconds);
            return Task.CompletedTask;
        }, cancellationToken);

    private async Task StartSchedulerAsync(CancellationToken cancellationToken)
    {
        _scheduler = await store.GetSchedulerAsync(cancellationToken);
        await _scheduler.Start(cancellationToken);
        NotRunning = null;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_pending is not null)
        {
            await _pending.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_scheduler is { } scheduler)
        {
            await scheduler.Shutdown(waitForJobsToComplete: true, cancellationToken);
        }
    }

    public void Dispose() => _stopping.Dispose();
}

/// <summary>The scheduler role is ready once its Quartz scheduler runs (see <see cref="SchedulerStarter"/>).</summary>
internal sealed class SchedulerReadinessCheck(SchedulerStarter starter) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(starter.NotRunning is { } reason ? HealthCheckResult.Unhealthy($"Scheduler not running: {reason}") : HealthCheckResult.Healthy());
}
