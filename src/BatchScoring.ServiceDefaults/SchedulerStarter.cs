using BatchScoring.Application;
using BatchScoring.Data;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Quartz;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// Starts the Quartz scheduler once PostgreSQL (its job store) answers and the database is migrated, retrying with a
/// capped backoff; stops it waiting for running jobs. When the dependencies answer at start-up it starts before the
/// host finishes starting. <see cref="SchedulerReadinessCheck"/> reports it until it runs.
/// </summary>
/// <remarks>
/// Quartz shuts a scheduler down for good when building it fails, and building it validates the <c>qrtz_</c> tables:
/// a scheduler role started before <c>batchscore migrate</c> (or an API with <c>--migrate</c>) ran would stay ready
/// and never fire a job — no reconciler, no drift audits, no schedules. So it waits for every migration of this build
/// first.
/// </remarks>
internal sealed class SchedulerStarter(ISchedulerFactory factory, NpgsqlDataSource dataSource, DependencyGate gate, ILogger<SchedulerStarter> logger)
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
        var pending = (await DatabaseMigrator.StatusAsync(dataSource, cancellationToken)).Where(m => m.State == MigrationState.Pending).ToList();
        if (pending.Count > 0)
        {
            throw new InvalidOperationException(
                $"waiting for the database to be migrated ({pending.Count} migrations pending, from {pending[0].Version:D3} {pending[0].Name}): run batchscore migrate or start a role with --migrate");
        }

        _scheduler = await factory.GetScheduler(cancellationToken);
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
