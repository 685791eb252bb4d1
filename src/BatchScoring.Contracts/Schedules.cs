namespace BatchScoring.Contracts;

/// <summary>
/// Body of <c>POST /api/schedules</c> and what <c>batchscore schedules create</c> sends: a job to submit on a cron
/// schedule. <see cref="Job"/> is a <see cref="SubmitScoringJob"/> whose Input, OutputParquet and OutputTable may hold
/// placeholders (<c>{date:yyyy-MM-dd}</c>, docs/schedules.md) filled from each fire time.
/// </summary>
public sealed record CreateSchedule
{
    /// <summary>Lower-case letters, digits, '-', '_' and '.'; unique per tenant.</summary>
    public required string Name { get; init; }

    /// <summary>Five-field crontab ("0 2 * * *"), Quartz's six or seven fields ("0 0 2 * * ?"), or @daily/@hourly/….</summary>
    public required string Cron { get; init; }

    /// <summary>IANA (or Windows) time zone id the cron and the placeholders are read in; null = UTC.</summary>
    public string? TimeZone { get; init; }

    /// <summary>The job each fire submits; the model's alias (or "latest") is resolved at each fire.</summary>
    public required SubmitScoringJob Job { get; init; }
}

/// <summary>Body of <c>POST /api/schedules/{name}/run-now</c> (optional).</summary>
public sealed record RunScheduleNow
{
    /// <summary>Fill the placeholders as if the schedule had fired at this time (a backfill); null = now.</summary>
    public DateTimeOffset? At { get; init; }
}

/// <summary>A schedule as <c>/api/schedules</c> reports it.</summary>
public sealed record ScheduleInfo
{
    public required string Name { get; init; }

    /// <summary>The cron expression as it was given.</summary>
    public required string Cron { get; init; }

    /// <summary>The same schedule in Quartz's syntax, as the scheduler stores it.</summary>
    public required string QuartzCron { get; init; }

    public required string TimeZone { get; init; }

    /// <summary>active or paused.</summary>
    public required string State { get; init; }

    /// <summary>The job template, placeholders unfilled.</summary>
    public required SubmitScoringJob Job { get; init; }

    /// <summary>Next regular fire (null while paused).</summary>
    public DateTimeOffset? NextRunAt { get; init; }

    public ScheduleRunInfo? LastRun { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>One fire of a schedule and the job it submitted (or why it submitted none).</summary>
public sealed record ScheduleRunInfo
{
    public required Guid Id { get; init; }
    public required string Schedule { get; init; }

    /// <summary>cron, run-now, or missed (a late run after fires were missed while no scheduler ran).</summary>
    public required string Kind { get; init; }

    /// <summary>The fire time the placeholders were filled from.</summary>
    public required DateTimeOffset FireTime { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>submitting, failed (no job: see <see cref="Error"/>), or the job's state (queued, running, succeeded, failed, cancelled).</summary>
    public required string State { get; init; }

    public Guid? JobId { get; init; }
    public int? ModelVersion { get; init; }
    public string? Input { get; init; }
    public string? Error { get; init; }
}
