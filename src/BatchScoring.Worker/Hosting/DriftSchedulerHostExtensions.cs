using BatchScoring.Application.Drift;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace BatchScoring.Worker.Hosting;

public static class DriftSchedulerHostExtensions
{
    /// <summary>
    /// The scheduler role: Quartz with its persistent, clustered job store in PostgreSQL (tables <c>qrtz_*</c>, created
    /// at start when missing), so any number of scheduler instances fire each audit once. One cron trigger
    /// (<see cref="DriftOptions.Schedule"/>) runs <see cref="DriftAuditJob"/>.
    /// </summary>
    public static IHostApplicationBuilder AddDriftScheduler(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        var schedule = builder.Configuration.GetSection(DriftOptions.SectionName).Get<DriftOptions>()?.Schedule ?? new DriftOptions().Schedule;
        if (!CronExpression.TryParse(schedule, out _))
        {
            throw new InvalidOperationException(
                $"BatchScoring:Drift:Schedule '{schedule}' is not a Quartz cron expression (seconds first, e.g. '0 0 * * * ?' for hourly).");
        }

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
        });
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        return builder;
    }
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
