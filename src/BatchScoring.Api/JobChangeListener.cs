using System.Collections.Concurrent;
using BatchScoring.Application;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Api;

/// <summary>
/// Wakes long polls of <c>GET /api/jobs/{id}?wait=</c>: one connection LISTENs on <see cref="Channel"/>, where a trigger
/// on <c>scoring.jobs</c> announces each committed change of a job's state or counters (migration 018). Waiters re-read
/// the job row, so a notice missed while disconnected only delays them: every waiter is woken when the connection is
/// (re)established and every <see cref="SweepInterval"/>, which also bounds how long a forgotten waiter is kept.
/// </summary>
public sealed class JobChangeListener(NpgsqlDataSource dataSource, DependencyGate gate, ILogger<JobChangeListener> logger) : BackgroundService
{
    public const string Channel = "batchscoring_job_changed";

    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _waiters = new();

    /// <summary>Completes at the next change of job <paramref name="jobId"/> (or a sweep). Take it before reading the job, so no change is missed.</summary>
    public Task NextChangeAsync(Guid jobId) =>
        _waiters.GetOrAdd(jobId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Whether a long poll of the job is waiting for its next change.</summary>
    public bool IsWaitedOn(Guid jobId) => _waiters.ContainsKey(jobId);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await gate.WhenReady(stoppingToken);
        var retry = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) =>
                {
                    if (Guid.TryParse(e.Payload, out var id) && _waiters.TryRemove(id, out var waiter))
                    {
                        waiter.TrySetResult();
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                retry = TimeSpan.FromSeconds(1);
                WakeAll();
                while (true)
                {
                    if (!await connection.WaitAsync(SweepInterval, stoppingToken))
                    {
                        WakeAll();
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                logger.LogWarning("Listening for job changes failed ({Error}); long polls fall back to re-reading every {Seconds} s until it reconnects", ex.Message, SweepInterval.TotalSeconds);
                WakeAll();
                await Task.Delay(retry, stoppingToken);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, DependencyGate.MaxRetryDelay.Ticks));
            }
        }

        WakeAll();
    }

    private void WakeAll()
    {
        foreach (var id in _waiters.Keys)
        {
            if (_waiters.TryRemove(id, out var waiter))
            {
                waiter.TrySetResult();
            }
        }
    }
}
