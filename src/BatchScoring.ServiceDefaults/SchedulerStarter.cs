using BatchScoring.Application;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// Starts the Quartz scheduler once PostgreSQL (its job store) answers, retrying with a capped backoff; stops it
/// waiting for running jobs. When the dependencies answer at start-up it starts before the host finishes starting.
/// </summary>
internal sealed class SchedulerStarter(ISchedulerFactory factory, DependencyGate gate, ILogger<SchedulerStarter> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private IScheduler? _scheduler;
    private Task? _pending;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (gate.IsReady)
        {
            try
            {
                await StartSchedulerAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning("Scheduler: could not start ({Error}); retrying in the background", ex.Message);
            }
        }

        _pending = Task.Run(() => StartWhenReachableAsync(_stopping.Token), CancellationToken.None);
    }

    private Task StartWhenReachableAsync(CancellationToken cancellationToken) =>
        gate.StartWhenReachableAsync(StartSchedulerAsync, ex => ex is not OperationCanceledException, (ex, delay) =>
        {
            logger.LogWarning("Scheduler: could not start ({Error}); retrying in {Delay:0.#} s", ex.Message, delay.TotalSeconds);
            return Task.CompletedTask;
        }, cancellationToken);

    private async Task StartSchedulerAsync(CancellationToken cancellationToken)
    {
        _scheduler = await factory.GetScheduler(cancellationToken);
        await _scheduler.Start(cancellationToken);
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
