using System.Text.RegularExpressions;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>A schedule request with invalid fields; <see cref="Errors"/> maps each field (JSON name) to what is wrong with it.</summary>
public sealed class ScheduleValidationException(IReadOnlyDictionary<string, string[]> errors)
    : Exception(string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")))
{
    public IReadOnlyDictionary<string, string[]> Errors { get; } = errors;
}

public sealed class ScheduleNotFoundException(string name) : Exception($"There is no schedule '{name}'.");

public sealed class ScheduleExistsException(string name)
    : Exception($"A schedule named '{name}' already exists; delete it first or choose another name.");

/// <summary>The schedule's state forbids the operation (run-now on a paused schedule).</summary>
public sealed class ScheduleStateException(string message) : Exception(message);

/// <summary>
/// Creates and controls schedules in Quartz's clustered store. Works from any role: the API role writes through a
/// scheduler it never starts (same store, same cluster name), and the started schedulers see the change at their next
/// look at the store (at most BatchScoring:Scheduler:IdleWaitSeconds later).
/// </summary>
public sealed partial class ScheduleService(
    QuartzStore schedulers,
    ModelRegistry registry,
    ScheduleRunStore runs,
    IOptions<BatchScoringOptions> options,
    TimeProvider clock,
    ILogger<ScheduleService> logger)
{
    /// <summary>
    /// Quartz's answer to a fire missed while no scheduler ran (longer than the store's misfire threshold, 60 s): fire
    /// once as soon as a scheduler is back, then go on with the schedule (docs/schedules.md).
    /// </summary>
    public const CronTriggerMisfireInstruction MisfirePolicy = CronTriggerMisfireInstruction.FireAndProceed;

    public async Task<ScheduleInfo> CreateAsync(CreateSchedule request, string tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var definition = await ValidateAsync(request, tenant, cancellationToken);
        var scheduler = await schedulers.GetSchedulerAsync(cancellationToken);
        var job = JobBuilder.Create<ScheduledScoringJob>()
            .WithIdentity(definition.JobKey)
            .WithDescription($"batchscore schedule '{definition.Name}': {definition.Cron} ({definition.TimeZoneId})")
            .UsingJobData(definition.ToJobData())
            .StoreDurably()
            .RequestRecovery()
            .Build();
        try
        {
            await scheduler.ScheduleJob(job, CronTrigger(definition, clock.GetUtcNow()), new ScheduleJobOptions(), cancellationToken);
        }
        catch (ObjectAlreadyExistsException)
        {
            throw new ScheduleExistsException(definition.Name);
        }

        logger.LogInformation("Schedule {Schedule} ({Tenant}) created: {Cron} in {TimeZone}", definition.Name, tenant, definition.QuartzCron, definition.TimeZoneId);
        return await GetAsync(definition.Name, tenant, cancellationToken);
    }

    public async Task<IReadOnlyList<ScheduleInfo>> ListAsync(string tenant, CancellationToken cancellationToken)
    {
        var scheduler = await schedulers.GetSchedulerAsync(cancellationToken);
        var group = ScheduleDefinition.Group(tenant);
        var headers = await scheduler.QueryJobs(new JobQuery { Group = GroupMatcher<JobKey>.GroupEquals(group), Take = int.MaxValue }, cancellationToken);
        var details = await scheduler.GetJobDetails(headers.Items.Select(h => h.Key).ToArray(), cancellationToken);
        var triggers = await scheduler.QueryTriggers(new TriggerQuery { Group = GroupMatcher<TriggerKey>.GroupEquals(group), Take = int.MaxValue }, cancellationToken);
        var latest = await runs.LatestAsync(tenant, cancellationToken);
        return details
            .Select(d => ScheduleDefinition.FromJobData(d.JobDataMap))
            .OrderBy(d => d.Name, StringComparer.Ordinal)
            .Select(d => ToInfo(d, triggers.Items.FirstOrDefault(t => t.Key.Equals(d.TriggerKey)), latest.GetValueOrDefault(d.Name)))
            .ToArray();
    }

    public async Task<ScheduleInfo> GetAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var (scheduler, definition) = await FindAsync(name, tenant, cancellationToken);
        var trigger = (await scheduler.QueryTriggers(new TriggerQuery { Job = definition.JobKey, Take = 100 }, cancellationToken)).Items
            .FirstOrDefault(t => t.Key.Equals(definition.TriggerKey));
        var last = (await runs.ListAsync(tenant, definition.Name, 1, cancellationToken)).FirstOrDefault();
        return ToInfo(definition, trigger, last);
    }

    public async Task<IReadOnlyList<ScheduleRunInfo>> RunsAsync(string name, string tenant, int limit, CancellationToken cancellationToken)
    {
        var (_, definition) = await FindAsync(name, tenant, cancellationToken);
        return (await runs.ListAsync(tenant, definition.Name, limit, cancellationToken)).Select(ToRunInfo).ToArray();
    }

    /// <summary>Pauses the schedule: no cron fire (and no pending run-now fire) until it is resumed; run-now is refused meanwhile.</summary>
    public async Task<ScheduleInfo> PauseAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var (scheduler, definition) = await FindAsync(name, tenant, cancellationToken);
        await scheduler.PauseJob(definition.JobKey, cancellationToken);
        logger.LogInformation("Schedule {Schedule} ({Tenant}) paused", definition.Name, tenant);
        return await GetAsync(name, tenant, cancellationToken);
    }

    /// <summary>
    /// Resumes with the next fire after now: fires missed while paused are not made up (a paused schedule was meant not
    /// to run; run-now --at backfills one). The trigger is replaced rather than un-paused, which would apply the
    /// misfire policy and fire at once.
    /// </summary>
    public async Task<ScheduleInfo> ResumeAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var (scheduler, definition) = await FindAsync(name, tenant, cancellationToken);
        await scheduler.RescheduleJob(definition.TriggerKey, CronTrigger(definition, clock.GetUtcNow()), cancellationToken);
        if (await scheduler.GetTriggerState(definition.TriggerKey, cancellationToken) == TriggerState.Paused)
        {
            await scheduler.ResumeTrigger(definition.TriggerKey, cancellationToken);
        }

        logger.LogInformation("Schedule {Schedule} ({Tenant}) resumed", definition.Name, tenant);
        return await GetAsync(name, tenant, cancellationToken);
    }

    /// <summary>Deletes the schedule (and pending run-now fires) and its run history; returns it as it was.</summary>
    public async Task<ScheduleInfo> DeleteAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var info = await GetAsync(name, tenant, cancellationToken);
        var (scheduler, definition) = await FindAsync(name, tenant, cancellationToken);
        await scheduler.DeleteJob(definition.JobKey, cancellationToken);
        await runs.DeleteAsync(tenant, definition.Name, cancellationToken);
        logger.LogInformation("Schedule {Schedule} ({Tenant}) deleted", definition.Name, tenant);
        return info with { State = "deleted", NextRunAt = null };
    }

    /// <summary>
    /// Fires the schedule once, now, through the scheduler (so whichever scheduler instance picks it up submits the job):
    /// the run is recorded here, as submitting, and the fire fills it in. <paramref name="at"/> fills the placeholders
    /// as if the schedule had fired then (a backfill).
    /// </summary>
    public async Task<ScheduleRunInfo> RunNowAsync(string name, string tenant, DateTimeOffset? at, CancellationToken cancellationToken)
    {
        var (scheduler, definition) = await FindAsync(name, tenant, cancellationToken);
        if (await scheduler.GetTriggerState(definition.TriggerKey, cancellationToken) == TriggerState.Paused)
        {
            // Quartz would store the fire paused with the schedule: refuse rather than leave a run waiting for a resume.
            throw new ScheduleStateException($"Schedule '{definition.Name}' is paused: resume it first (a paused schedule submits nothing).");
        }

        var fireTime = at ?? clock.GetUtcNow();
        if (at is not null)
        {
            try
            {
                definition.Render(fireTime);
            }
            catch (PlaceholderException ex)
            {
                throw new ScheduleValidationException(new Dictionary<string, string[]> { ["at"] = [ex.Message] });
            }
        }

        var fireKey = $"{definition.Id}/run-now/{Guid.CreateVersion7()}";
        var run = await runs.StartAsync(tenant, definition.Name, fireKey, ScheduledScoringJob.RunNowKind, fireTime, cancellationToken);
        var data = new JobDataMap();
        data.Add(ScheduledScoringJob.FireKeyData, fireKey);
        data.Add(ScheduledScoringJob.FireTimeData, fireTime.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        await scheduler.TriggerJob(definition.JobKey, data, cancellationToken);
        logger.LogInformation("Schedule {Schedule} ({Tenant}) run now for {FireTime:O}", definition.Name, tenant, fireTime);
        return ToRunInfo(run);
    }

    private async Task<(IScheduler Scheduler, ScheduleDefinition Definition)> FindAsync(string name, string tenant, CancellationToken cancellationToken)
    {
        var scheduler = await schedulers.GetSchedulerAsync(cancellationToken);
        if (!NamePattern().IsMatch(name ?? "") || await scheduler.GetJobDetail(new JobKey(name!, ScheduleDefinition.Group(tenant)), cancellationToken) is not { } detail)
        {
            throw new ScheduleNotFoundException(name ?? "");
        }

        return (scheduler, ScheduleDefinition.FromJobData(detail.JobDataMap));
    }

    internal static ITrigger CronTrigger(ScheduleDefinition definition, DateTimeOffset startAt) =>
        TriggerBuilder.Create()
            .WithIdentity(definition.TriggerKey)
            .ForJob(definition.JobKey)
            .StartAt(startAt)
            .WithSchedule(CronScheduleBuilder.Create(definition.Expression).InTimeZone(definition.TimeZone).WithMisfireInstruction(MisfirePolicy))
            .Build();

    /// <summary>Checks every field, collecting all problems; the model must resolve now (it is resolved again at each fire).</summary>
    private async Task<ScheduleDefinition> ValidateAsync(CreateSchedule request, string tenant, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list))
            {
                errors[field] = list = [];
            }

            list.Add(message);
        }

        if (!NamePattern().IsMatch(request.Name ?? ""))
        {
            Add("name", $"'{request.Name}' is not a schedule name: 1–63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit.");
        }

        var cron = ScheduleCron.TryParse(request.Cron, out var cronError);
        if (cronError is not null)
        {
            Add("cron", cronError);
        }

        var zone = ScheduleCron.TryTimeZone(request.TimeZone, out var zoneError);
        if (zoneError is not null)
        {
            Add("timeZone", zoneError);
        }

        var job = request.Job;
        if (job is null)
        {
            Add("job", "is required: the job each fire submits (the body of POST /api/jobs).");
            throw Invalid(errors);
        }

        if (job.IdempotencyKey is not null)
        {
            Add("job.idempotencyKey", "is set by each fire (one job per fire); leave it out.");
        }

        var roots = options.Value.GetStorageRoots();
        var probeTime = cron is not null && zone is not null
            ? cron.WithTimeZone(zone).GetNextValidTimeAfter(clock.GetUtcNow()) ?? clock.GetUtcNow()
            : clock.GetUtcNow();
        var rendered = job;
        foreach (var (field, value, apply) in new (string, string?, Func<SubmitScoringJob, string, SubmitScoringJob>)[]
        {
            ("job.input", job.Input, (j, v) => j with { Input = v }),
            ("job.outputParquet", job.OutputParquet, (j, v) => j with { OutputParquet = v }),
            ("job.outputTable", job.OutputTable, (j, v) => j with { OutputTable = v }),
        })
        {
            if (value is null)
            {
                continue;
            }

            try
            {
                var filled = SchedulePlaceholders.Render(value, probeTime, zone ?? TimeZoneInfo.Utc, request.Name ?? "");
                rendered = apply(rendered, filled);
                if (field != "job.outputTable")
                {
                    if (!Path.IsPathRooted(value))
                    {
                        Add(field, $"'{value}' must be an absolute path: the fires run in the scheduler's process, not in yours.");
                    }
                    else
                    {
                        roots.Confine(filled, field);
                    }
                }
            }
            catch (PlaceholderException ex)
            {
                Add(field, ex.Message);
            }
            catch (PathNotAllowedException ex)
            {
                Add(field, ex.Message);
            }
        }

        try
        {
            JobSubmitter.ValidateFields(rendered with { IdempotencyKey = null });
        }
        catch (JobValidationException ex)
        {
            Add("job", ex.Message);
        }

        if (!string.IsNullOrWhiteSpace(job.Model)
            && await registry.ResolveAsync(job.Model, job.ModelVersion, tenant, cancellationToken) is null)
        {
            Add("job.model", ModelRegistry.NotFound(job.Model, job.ModelVersion) + " Register it first (the alias is resolved again at each fire).");
        }

        if (errors.Count > 0)
        {
            throw Invalid(errors);
        }

        return new ScheduleDefinition(
            Guid.CreateVersion7(), tenant, request.Name!, request.Cron.Trim(), cron!.CronExpressionString, zone!.Id, job, clock.GetUtcNow());
    }

    private static ScheduleValidationException Invalid(Dictionary<string, List<string>> errors) =>
        new(errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));

    private static ScheduleInfo ToInfo(ScheduleDefinition definition, TriggerHeader? trigger, StoredScheduleRun? last) => new()
    {
        Name = definition.Name,
        Cron = definition.Cron,
        QuartzCron = definition.QuartzCron,
        TimeZone = definition.TimeZoneId,
        State = trigger?.State is TriggerState.Paused ? "paused" : "active",
        Job = definition.Job,
        NextRunAt = trigger is { State: not TriggerState.Paused } ? trigger.NextFireTimeUtc : null,
        LastRun = last is null ? null : ToRunInfo(last),
        CreatedAt = definition.CreatedAt,
    };

    public static ScheduleRunInfo ToRunInfo(StoredScheduleRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new ScheduleRunInfo
        {
            Id = run.Id,
            Schedule = run.ScheduleName,
            Kind = run.Kind,
            FireTime = run.FireTime,
            StartedAt = run.StartedAt,
            State = run.State == "submitted" && run.JobState is { } jobState ? jobState : run.State,
            JobId = run.JobId,
            ModelVersion = run.ModelVersion,
            Input = run.Input,
            Error = run.Error,
        };
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
