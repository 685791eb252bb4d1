using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Application.Schedules;
using BatchScoring.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Quartz;

namespace BatchScoring.ServiceDefaults;

public static class SchedulerHostExtensions
{
    /// <summary>Seconds between a scheduler's check-ins in the cluster table (<c>qrtz_scheduler_state</c>).</summary>
    public const string CheckinIntervalKey = "BatchScoring:Scheduler:CheckinIntervalSeconds";

    /// <summary>How late a check-in may be, in seconds, before the other schedulers take the instance for dead.</summary>
    public const string CheckinMisfireThresholdKey = "BatchScoring:Scheduler:CheckinMisfireThresholdSeconds";

    /// <summary>
    /// The scheduler role: Quartz with its persistent, clustered job store in PostgreSQL (tables <c>qrtz_*</c>, created by
    /// migration 009 like every other table; Quartz only validates them at start), so any number of scheduler instances
    /// fire each run once. Cron triggers run
    /// <see cref="DriftAuditJob"/> (<see cref="DriftOptions.Schedule"/>) and <see cref="DispatchRecoveryJob"/>
    /// (<see cref="BatchScoringOptions.DispatchRecoverySchedule"/>).
    /// </summary>
    /// <remarks>
    /// Fail-over: an instance that stops checking in is taken for dead after interval + threshold (2 + 4 s by
    /// default, Quartz's own default is 7.5 + 7.5 s). A fire it was running is then recovered on another instance
    /// (the audit job requests recovery), but Quartz first waits a grace period of 2 × interval + threshold for a
    /// <c>[DisallowConcurrentExecution]</c> job that may still be running, so take-over comes 11–14 s after the crash
    /// (measured; about 30 s with Quartz's defaults). A shorter interval costs one small UPDATE per instance per interval; a
    /// threshold shorter than the longest database stall would fail over live instances.
    /// </remarks>
    public static IHostApplicationBuilder AddScheduler(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        var schedule = Cron(builder.Configuration, DriftOptions.SectionName + ":Schedule", new DriftOptions().Schedule, MinimumAuditInterval);
        var recoverySchedule = Cron(builder.Configuration, BatchScoringOptions.SectionName + ":DispatchRecoverySchedule", new BatchScoringOptions().DispatchRecoverySchedule);
        var checkinInterval = Seconds(builder.Configuration, CheckinIntervalKey, 2);
        var checkinMisfireThreshold = Seconds(builder.Configuration, CheckinMisfireThresholdKey, 4);

        builder.Services.AddQuartz(q =>
        {
            UseClusteredStore(q, builder.Configuration, postgres, checkinInterval, checkinMisfireThreshold);
            // Recovery: a fire interrupted by a crashed instance runs again on another one (DriftAuditJob makes that idempotent).
            q.AddJob<DriftAuditJob>(job => job.WithIdentity(DriftAuditJob.Key).StoreDurably().RequestRecovery());
            q.AddTrigger(trigger => trigger
                .ForJob(DriftAuditJob.Key)
                .WithIdentity("drift-audit-schedule", "batchscoring")
                .WithCronSchedule(schedule, cron => cron.WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed)));
            q.AddJob<DispatchRecoveryJob>(job => job.WithIdentity(DispatchRecoveryJob.Key).StoreDurably());
            q.AddTrigger(trigger => trigger
                .ForJob(DispatchRecoveryJob.Key)
                .WithIdentity(SchedulerCluster.ReconcilerTrigger, SchedulerCluster.SchedulerName) // read back by the status page
                .WithCronSchedule(recoverySchedule, cron => cron.WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
            q.AddPerformanceReports(builder.Configuration);
        });
        // Instead of Quartz's hosted service, which fails the host's start when PostgreSQL is down.
        builder.Services.AddSingleton<SchedulerStarter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SchedulerStarter>());
        builder.Services.AddHealthChecks().AddCheck<SchedulerReadinessCheck>("scheduler", tags: [ReadinessChecks.ReadyTag]);
        AddScheduleServices(builder.Services);
        return builder;
    }

    /// <summary>Seconds a started scheduler waits, when nothing is due, before it looks at the store again.</summary>
    public const string IdleWaitKey = "BatchScoring:Scheduler:IdleWaitSeconds";

    /// <summary>
    /// For a process without the scheduler role (the API alone): a Quartz scheduler on the same clustered store that is
    /// never started, so that <see cref="ScheduleService"/> can create, pause, resume, delete and run schedules there.
    /// The started schedulers of the cluster see each change when they next look at the store, within
    /// <see cref="IdleWaitKey"/> seconds (5 by default); an unstarted instance never checks in, fires or recovers.
    /// </summary>
    public static IHostApplicationBuilder AddScheduleStore(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        var checkinInterval = Seconds(builder.Configuration, CheckinIntervalKey, 2);
        var checkinMisfireThreshold = Seconds(builder.Configuration, CheckinMisfireThresholdKey, 4);
        builder.Services.AddQuartz(q => UseClusteredStore(q, builder.Configuration, postgres, checkinInterval, checkinMisfireThreshold));
        AddScheduleServices(builder.Services);
        return builder;
    }

    /// <summary>One store configuration for started and unstarted schedulers: same cluster name, tables and locks.</summary>
    private static void UseClusteredStore(
        IQuartzBuilder q, IConfiguration configuration, string postgres, TimeSpan checkinInterval, TimeSpan checkinMisfireThreshold)
    {
        var idleWait = Seconds(configuration, IdleWaitKey, 5);
        q.ConfigureScheduler(o =>
        {
            o.InstanceName = SchedulerCluster.SchedulerName;
            o.GenerateInstanceId = true;

            // Schedules written by an API role in another process are seen when a scheduler next looks at the store.
            o.IdleWaitTime = idleWait < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : idleWait;
        });
        q.UsePersistentStore(store =>
        {
            store.UsePostgres(postgres);
            store.UseSystemTextJsonSerializer();
            store.UseClustering(cluster =>
            {
                cluster.CheckinInterval = checkinInterval;
                cluster.CheckinMisfireThreshold = checkinMisfireThreshold;
            });
        });
    }

    private static void AddScheduleServices(IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ScheduleRunStore>();
        services.TryAddSingleton<QuartzStore>();
        services.TryAddSingleton<SchedulerCluster>();
        services.TryAddSingleton<ScheduleService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IModelVersionUse, ScheduleModelUse>());
    }

    private static TimeSpan Seconds(IConfiguration configuration, string key, double fallback)
    {
        var value = configuration[key];
        if (string.IsNullOrEmpty(value))
        {
            return TimeSpan.FromSeconds(fallback);
        }

        return double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds is >= 0.5 and <= 600
            ? TimeSpan.FromSeconds(seconds)
            : throw new InvalidOperationException($"{key} must be a number of seconds between 0.5 and 600 (was '{value}').");
    }

    /// <summary>
    /// Drift audits closer together than this are refused: a schedule like "* 0 * * * ?" (meant as hourly, it fires
    /// every second of minute 0) would run sixty audits back to back.
    /// </summary>
    public static readonly TimeSpan MinimumAuditInterval = TimeSpan.FromSeconds(2);

    private static string Cron(IConfiguration configuration, string key, string fallback, TimeSpan? minimumInterval = null)
    {
        var value = configuration[key] is { Length: > 0 } configured ? configured : fallback;
        if (!CronExpression.TryParse(value, out _))
        {
            throw new InvalidOperationException($"{key} '{value}' is not a Quartz cron expression (seconds first, e.g. '0 0 * * * ?' for hourly).");
        }

        if (minimumInterval is { } minimum && ShortestInterval(new CronExpression(value, TimeZoneInfo.Utc)) is { } shortest && shortest < minimum)
        {
            throw new InvalidOperationException(
                $"{key} '{value}' fires every {shortest.TotalSeconds:0.#} s at times; at least {minimum.TotalSeconds:0.#} s must pass between runs. Give the seconds field one value (e.g. '0 0 * * * ?' for hourly).");
        }

        return value;
    }

    /// <summary>The shortest gap between the next few hundred fires (bursts such as "* 0 * * * ?" show up within them).</summary>
    private static TimeSpan? ShortestInterval(CronExpression cron)
    {
        TimeSpan? shortest = null;
        var previous = cron.GetNextValidTimeAfter(DateTimeOffset.UtcNow);
        for (var i = 0; i < 300 && previous is { } at; i++)
        {
            var next = cron.GetNextValidTimeAfter(at);
            if (next is { } n && (shortest is null || n - at < shortest))
            {
                shortest = n - at;
            }

            previous = next;
        }

        return shortest;
    }
}

/// <summary>The chunk reconciler: undispatched jobs, and chunks whose message was lost, dead-lettered or backed off (see <see cref="DispatchRecovery"/>).</summary>
[DisallowConcurrentExecution]
public sealed class DispatchRecoveryJob(DispatchRecovery recovery) : IJob
{
    public static readonly JobKey Key = new("dispatch-recovery", "batchscoring");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await recovery.ReconcileAsync(cancellationToken);
}

/// <summary>
/// Audits every profiled model version with recent samples; never two at once across the cluster. Each fire has an id
/// (trigger and the fire's time as Quartz stored it) that a recovered run of the same fire sees too, and the auditor
/// stores one report per model version per fire: a fire recovered after a crash audits only the versions left.
/// </summary>
[DisallowConcurrentExecution]
public sealed class DriftAuditJob(DriftAuditor auditor, NpgsqlDataSource dataSource, ILogger<DriftAuditJob> logger) : IJob
{
    public static readonly JobKey Key = new("drift-audit", "batchscoring");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var fire = await FireIdAsync(context, dataSource, cancellationToken);
        logger.LogInformation(
            "Scheduled drift audit {Fire} started{Recovered}", fire, context.Recovering ? " (recovered: the scheduler that ran it stopped mid-run)" : "");
        var reports = await auditor.AuditAllAsync(fire, cancellationToken);
        logger.LogInformation(
            "Scheduled drift audit {Fire}: {Count} model versions audited, {Drifted} drifted; next at {Next:O}",
            fire, reports.Count, reports.Count(r => r.Drifted), context.NextFireTimeUtc);
    }

    /// <summary>
    /// <c>trigger@fired-time</c>. A recovery trigger starts at the interrupted fire's stored fired time (Quartz's
    /// cluster recovery), and a first run reads that time from its own <c>qrtz_fired_triggers</c> row, so both
    /// name the fire alike, to the tick.
    /// </summary>
    internal static async Task<string> FireIdAsync(IJobExecutionContext context, NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        if (context.Recovering && context.RecoveringTriggerKey is { } original)
        {
            return Id(original.Name, context.Trigger.StartTimeUtc.UtcTicks);
        }

        await using var select = dataSource.CreateCommand("SELECT fired_time FROM qrtz_fired_triggers WHERE entry_id = $1");
        select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = context.FireInstanceId });
        var firedTicks = await select.ExecuteScalarAsync(cancellationToken) is long ticks ? ticks : context.FireTimeUtc.UtcTicks;
        return Id(context.Trigger.Key.Name, firedTicks);
    }

    private static string Id(string trigger, long firedTicks) =>
        $"{trigger}@{new DateTimeOffset(firedTicks, TimeSpan.Zero).ToString("O", System.Globalization.CultureInfo.InvariantCulture)}";
}
