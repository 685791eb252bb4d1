using BatchScoring.Data;
using Npgsql;
using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>
/// The Quartz scheduler on the clustered store in PostgreSQL, asked for only once the database is migrated. Building a
/// scheduler validates its <c>qrtz_</c> tables, and Quartz shuts down for good a scheduler whose tables are missing: one
/// asked for before <c>batchscore migrate</c> ran would fail every later call (schedules) or fire nothing (the
/// scheduler role) until the process restarts. Before that, callers get <see cref="DatabaseNotMigratedException"/>.
/// </summary>
public sealed class QuartzStore(ISchedulerFactory schedulers, NpgsqlDataSource dataSource)
{
    private volatile bool _migrated;

    public async Task<IScheduler> GetSchedulerAsync(CancellationToken cancellationToken)
    {
        if (!_migrated)
        {
            await DatabaseMigrator.EnsureMigratedAsync(dataSource, cancellationToken);
            _migrated = true;
        }

        return await schedulers.GetScheduler(cancellationToken);
    }
}
