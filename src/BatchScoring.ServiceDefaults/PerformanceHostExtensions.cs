using BatchScoring.Application;
using BatchScoring.Application.Performance;
using BatchScoring.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Quartz;

namespace BatchScoring.ServiceDefaults;

public static class PerformanceHostExtensions
{
    /// <summary>
    /// Labels and realised performance (<see cref="PerformanceOptions"/>, section <c>BatchScoring:Performance</c>) and the
    /// named PostgreSQL sources that label queries read (<c>BatchScoring:Sources:&lt;name&gt;</c>, Npgsql connection strings).
    /// </summary>
    public static IHostApplicationBuilder AddPerformance(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddValidatedOptions<PerformanceOptions>(PerformanceOptions.SectionName, o => o.Validate());
        builder.Services.AddSingleton<LabelStore>();
        builder.Services.AddSingleton<PerformanceStore>();
        builder.Services.AddSingleton<LabelIngester>();
        builder.Services.AddSingleton<PerformanceReporter>();
        return builder;
    }

    /// <summary>The scheduler's <see cref="PerformanceReportJob"/> on <see cref="PerformanceOptions.Schedule"/> (Quartz cron, seconds first).</summary>
    public static void AddPerformanceReports(this IQuartzBuilder quartz, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(quartz);
        ArgumentNullException.ThrowIfNull(configuration);
        const string key = PerformanceOptions.SectionName + ":Schedule";
        var schedule = configuration[key] is { Length: > 0 } configured ? configured : new PerformanceOptions().Schedule;
        if (!CronExpression.TryParse(schedule, out _))
        {
            throw new InvalidOperationException($"{key} '{schedule}' is not a Quartz cron expression (seconds first, e.g. '0 15 * * * ?' for hourly).");
        }

        quartz.AddJob<PerformanceReportJob>(job => job.WithIdentity(PerformanceReportJob.Key).StoreDurably());
        quartz.AddTrigger(trigger => trigger
            .ForJob(PerformanceReportJob.Key)
            .WithIdentity("performance-report-schedule", "batchscoring")
            .WithCronSchedule(schedule, cron => cron.WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
    }
}

/// <summary>Reports realised performance of every labelled model; never two at once across the cluster.</summary>
[DisallowConcurrentExecution]
public sealed class PerformanceReportJob(PerformanceReporter reporter, ILogger<PerformanceReportJob> logger) : IJob
{
    public static readonly JobKey Key = new("performance-report", "batchscoring");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var reports = await reporter.ReportAllAsync(cancellationToken);
        logger.LogInformation(
            "Scheduled performance report: {Count} model versions, {Dropped} dropped against their baseline; next at {Next:O}",
            reports.Count, reports.Count(r => r.Drops.Count > 0), context.NextFireTimeUtc);
    }
}
