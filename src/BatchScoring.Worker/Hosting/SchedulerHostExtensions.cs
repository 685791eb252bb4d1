using BatchScoring.Application;
using BatchScoring.Application.Drift;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace BatchScoring.Worker.Hosting;

public static class SchedulerHostExtensions
{
    /// <summary>
    /// The scheduler role: Quartz with its persistent, clustered job store in PostgreSQL (tables <c>qrtz_*</c>, created
    /// at start when missing), so any number of scheduler instances fire each run once. Cron triggers run
    /// <see cref="DriftAuditJob"/> (<see cref="DriftOptions.Schedule"/>) and <see cref="DispatchRecoveryJob"/>
    /// (<see cref="BatchScoringOptions.DispatchRecoverySchedule"/>).
    /// </summary>
    public static IHostApplicationBuilder AddScheduler(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        var schedule = Cron(builder.Configuration, DriftOptions.SectionName + ":Schedule", new DriftOptions().Schedule);
        var recoverySchedule = Cron(builder.Configuration, BatchScoringOptions.SectionName + ":DispatchRecoverySchedule", new BatchScoringOptions().DispatchRecoverySchedule);

        builder.Services.AddQuartz(q =>
        {
            q.ConfigureScheduler(o =>
            {
                o.InstanceName = "batchscoring";
                o.GenerateInstanceId = true;
            });
            q.UsePersistentStore(store =>
            {
                store.UsePostgres(postgres);
                store.UseSystemTextJsonSerializer();
                store.UseClustering();
                store.ProvisionSchema();
            });
            q.AddJob<DriftAuditJob>(job => job.WithIdentity(DriftAuditJob.Key).StoreDurably());
            q.AddTrigger(trigger => trigger
                .ForJob(DriftAuditJob.Key)
                .WithIdentity("drift-audit-schedule", "batchscoring")
                .WithCronSchedule(schedule, cron => cron.WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed)));
            q.AddJob<DispatchRecoveryJob>(job => job.WithIdentity(DispatchRecoveryJob.Key).StoreDurably());
            q.AddTrigger(trigger => trigger
                .ForJob(DispatchRecoveryJob.Key)
                .WithIdentity("dispatch-recovery-schedule", "batchscoring")
                .WithCronSchedule(recoverySchedule, cron => cron.WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
        });
        // Instead of Quartz's hosted service, which fails the host's start when PostgreSQL is down.
        builder.Services.AddHostedService<SchedulerStarter>();
        return builder;
    }

    private static string Cron(IConfiguration configuration, string key, string fallback)
    {
        var value = configuration[key] is { Length: > 0 } configured ? configured : fallback;
        return CronExpression.TryParse(value, out _)
            ? value
            : throw new InvalidOperationException($"{key} '{value}' is not a Quartz cron expression (seconds first, e.g. '0 0 * * * ?' for hourly).");
    }
}

/// <summary>Sends the chunks of jobs that were recorded but never dispatched (see <see cref="DispatchRecovery"/>).</summary>
[DisallowConcurrentExecution]
public sealed class DispatchRecoveryJob(DispatchRecovery recovery, Microsoft.Extensions.Options.IOptions<BatchScoringOptions> options) : IJob
{
    public static readonly JobKey Key = new("dispatch-recovery", "batchscoring");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await recovery.RecoverAsync(TimeSpan.FromSeconds(options.Value.DispatchRecoveryGraceSeconds), cancellationToken);
}

/// <summary>Audits every profiled model version with recent samples; never two at once across the cluster.</summary>
[DisallowConcurrentExecution]
public sealed class DriftAuditJob(DriftAuditor auditor, ILogger<DriftAuditJob> logger) : IJob
{
    public static readonly JobKey Key = new("drift-audit", "batchscoring");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var reports = await auditor.AuditAllAsync(cancellationToken);
        logger.LogInformation(
            "Scheduled drift audit: {Count} model versions audited, {Drifted} drifted; next at {Next:O}",
            reports.Count, reports.Count(r => r.Drifted), context.NextFireTimeUtc);
    }
}
