using System.Globalization;
using BatchScoring.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>
/// One fire of a schedule: fills the template's placeholders from the fire time, submits the job (its alias resolved
/// now) and records the run with its job, or, when the job cannot be submitted (a missing input, an unknown model),
/// records the run failed with the reason. A fire that Quartz recovers after its scheduler died finds its run and
/// its job again (both keyed by the fire), so it never submits twice.
/// </summary>
public sealed class ScheduledScoringJob(IServiceScopeFactory scopes, ScheduleRunStore runs, ILogger<ScheduledScoringJob> logger) : IJob
{
    public const string CronKind = "cron";
    public const string RunNowKind = "run-now";
    public const string MissedKind = "missed";

    /// <summary>Trigger data of a run-now fire: the run's key, recorded by the API before it asked for the fire.</summary>
    public const string FireKeyData = "fireKey";

    /// <summary>Trigger data of a run-now fire: the time its placeholders are filled from.</summary>
    public const string FireTimeData = "fireTime";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var definition = ScheduleDefinition.FromJobData(context.JobDetail.JobDataMap);
        var (kind, fireKey, fireTime) = Identify(context, definition);
        var run = await runs.StartAsync(definition.Tenant, definition.Name, fireKey, kind, fireTime, cancellationToken);
        if (run.State != "submitting")
        {
            logger.LogInformation("Schedule {Schedule}: fire {FireKey} was already handled ({State})", definition.Name, fireKey, run.State);
            return;
        }

        string? input = null;
        try
        {
            var request = definition.Render(fireTime);
            input = request.Input;
            await using var scope = scopes.CreateAsyncScope();
            var submitter = scope.ServiceProvider.GetRequiredService<JobSubmitter>();
            var result = await submitter.SubmitAsync(request with { IdempotencyKey = "schedule:" + fireKey }, definition.Tenant, cancellationToken);
            await runs.MarkSubmittedAsync(run.Id, result.Job.Id, result.Job.ModelVersion, result.Job.InputUri, cancellationToken);
            logger.LogInformation(
                "Schedule {Schedule}: {Kind} fire for {FireTime:O} submitted job {JobId} (model {Model} v{Version}, input {Input})",
                definition.Name, kind, fireTime, result.Job.Id, result.Job.ModelName, result.Job.ModelVersion, result.Job.InputUri);
        }
        catch (Exception ex) when (ex is JobValidationException or ModelUnavailableException or IdempotencyConflictException or PlaceholderException)
        {
            await runs.MarkFailedAsync(run.Id, input, ex.Message, cancellationToken);
            logger.LogWarning("Schedule {Schedule}: {Kind} fire for {FireTime:O} failed: {Reason}", definition.Name, kind, fireTime, ex.Message);
        }
        catch (BrokerUnavailableException ex)
        {
            // The job is recorded; dispatch recovery sends its chunks when the broker is back.
            await using var scope = scopes.CreateAsyncScope();
            var job = await scope.ServiceProvider.GetRequiredService<JobStore>().GetJobAsync(ex.JobId, cancellationToken);
            await runs.MarkSubmittedAsync(run.Id, ex.JobId, job?.ModelVersion ?? 0, job?.InputUri ?? input ?? "", cancellationToken);
            logger.LogWarning("Schedule {Schedule}: job {JobId} recorded, its chunks wait for the broker", definition.Name, ex.JobId);
        }
    }

    /// <summary>
    /// What this fire is: a run-now (its key and time came with its trigger), or a cron fire keyed by the slot it stands
    /// for: the scheduled time, or for a late fire after a misfire the latest slot it missed.
    /// </summary>
    private static (string Kind, string FireKey, DateTimeOffset FireTime) Identify(IJobExecutionContext context, ScheduleDefinition definition)
    {
        var data = context.MergedJobDataMap;
        if (data.TryGetValue(FireKeyData, out var key) && key?.ToString() is { Length: > 0 } fireKey)
        {
            var at = data.TryGetValue(FireTimeData, out var time) && time?.ToString() is { Length: > 0 } text
                ? DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)
                : context.ScheduledFireTimeUtc ?? context.FireTimeUtc;
            return (RunNowKind, fireKey, at);
        }

        var scheduled = context.ScheduledFireTimeUtc ?? context.FireTimeUtc;
        var slot = ScheduleCron.LatestAtOrBefore(definition.Expression, scheduled) ?? scheduled;
        var kind = scheduled - slot >= TimeSpan.FromSeconds(1) ? MissedKind : CronKind;
        return (kind, $"{definition.Id}@{slot.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)}", slot);
    }
}
