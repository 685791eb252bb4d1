using Npgsql;

namespace BatchScoring.Data;

/// <summary>A started scheduler of the cluster as Quartz records it (<c>qrtz_scheduler_state</c>).</summary>
/// <param name="Alive">Checked in within two check-in intervals plus 10 s: a stopped instance's row stays until another one removes it.</param>
public sealed record SchedulerNode(string Instance, DateTimeOffset LastCheckIn, TimeSpan CheckInInterval, bool Alive);

/// <summary>The started schedulers and when the chunk reconciler last fired, read from Quartz's tables.</summary>
public sealed record SchedulerClusterState(IReadOnlyList<SchedulerNode> Schedulers, DateTimeOffset? ReconcilerFiredAt);

/// <summary>
/// Reads Quartz's clustered store (migration 009) for the scheduler <c>batchscoring</c>: which instances are running
/// (only started schedulers check in; an API's unstarted one never does) and the reconciler trigger's last fire. Times
/// are stored as UTC ticks, check-in intervals in milliseconds.
/// </summary>
public sealed class SchedulerCluster(NpgsqlDataSource dataSource, TimeProvider clock)
{
    public const string SchedulerName = "batchscoring";

    /// <summary>The reconciler's trigger (<c>dispatch-recovery-schedule</c> in group <c>batchscoring</c>).</summary>
    public const string ReconcilerTrigger = "dispatch-recovery-schedule";

    private static readonly TimeSpan AliveSlack = TimeSpan.FromSeconds(10);

    /// <summary>The cluster's state; nothing running on a database not migrated yet (no Quartz tables).</summary>
    public async Task<SchedulerClusterState> ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ReadTablesAsync(cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return new SchedulerClusterState([], null);
        }
    }

    private async Task<SchedulerClusterState> ReadTablesAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var nodes = new List<SchedulerNode>();
        await using (var command = dataSource.CreateCommand(
            "SELECT instance_name, last_checkin_time, checkin_interval FROM qrtz_scheduler_state WHERE sched_name = $1 ORDER BY instance_name"))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SchedulerName });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var checkIn = new DateTimeOffset(reader.GetInt64(1), TimeSpan.Zero);
                var interval = TimeSpan.FromMilliseconds(reader.GetInt64(2));
                nodes.Add(new SchedulerNode(reader.GetString(0), checkIn, interval, now - checkIn <= interval * 2 + AliveSlack));
            }
        }

        await using var fired = dataSource.CreateCommand(
            "SELECT prev_fire_time FROM qrtz_triggers WHERE sched_name = $1 AND trigger_name = $2 AND trigger_group = $1");
        fired.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SchedulerName });
        fired.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ReconcilerTrigger });
        var ticks = await fired.ExecuteScalarAsync(cancellationToken);
        return new SchedulerClusterState(nodes, ticks is long t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null);
    }
}
