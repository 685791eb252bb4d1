using BatchScoring.Application;
using BatchScoring.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Worker.Requests.WarmUp;

/// <summary>
/// Follows alias moves so a promoted version is warm before requests reach it: LISTENs on the channel the alias
/// history announces each committed move on, then reads the moves after the last one it handled and warms what each
/// alias now points at (<see cref="RequestScoringService.WarmAliasAsync"/>). The table, not the notice, is the source,
/// so a notice missed while disconnected is caught up on reconnect, and AliasPollSeconds re-reads it in any case
/// (a connection pooler that drops LISTEN degrades this to a poll).
/// </summary>
internal sealed class AliasMoveWatcher(
    NpgsqlDataSource dataSource,
    CanaryStore store,
    RequestScoringService scoring,
    DependencyGate gate,
    IOptions<RequestBatchingOptions> options,
    ILogger<AliasMoveWatcher> logger) : BackgroundService
{
    private long _lastSeen = -1;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.WarmOnAliasMove)
        {
            return;
        }

        await gate.WhenReady(stoppingToken);
        var poll = TimeSpan.FromSeconds(settings.AliasPollSeconds);
        var retry = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                await using (var listen = new NpgsqlCommand($"LISTEN {CanaryStore.AliasMovedChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                if (_lastSeen < 0)
                {
                    _lastSeen = await store.LastAliasMoveIdAsync(stoppingToken);
                }

                retry = TimeSpan.FromSeconds(1);
                while (true)
                {
                    await CatchUpAsync(stoppingToken);
                    await connection.WaitAsync(poll, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                logger.AliasWatchFailed(ex.Message, retry);
                await Task.Delay(retry, stoppingToken);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, DependencyGate.MaxRetryDelay.Ticks));
            }
        }
    }

    /// <summary>Warms what each alias moved since the last pass points at now (its last move only).</summary>
    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        var moves = await store.AliasMovesAfterAsync(_lastSeen, cancellationToken);
        if (moves.Count == 0)
        {
            return;
        }

        foreach (var move in moves.GroupBy(m => (m.Model, m.Alias)).Select(g => g.Last()))
        {
            logger.AliasMoved(move.Model, move.Alias, move.Version, move.CanaryVersion);
            await scoring.WarmAliasAsync(move, cancellationToken);
        }

        _lastSeen = moves[^1].Id;
    }
}
