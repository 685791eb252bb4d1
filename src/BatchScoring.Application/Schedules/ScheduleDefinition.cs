using System.Text.Json;
using BatchScoring.Contracts;
using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>
/// A schedule as it is kept in Quartz's store: the job detail (group <c>schedules:&lt;tenant&gt;</c>, named like the
/// schedule) carries this definition in its JobDataMap, as strings; its one cron trigger has the same key.
/// </summary>
public sealed record ScheduleDefinition(
    Guid Id, string Tenant, string Name, string Cron, string QuartzCron, string TimeZoneId, SubmitScoringJob Job, DateTimeOffset CreatedAt)
{
    public const string GroupPrefix = "schedules:";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string Group(string tenant) => GroupPrefix + tenant;

    public JobKey JobKey => new(Name, Group(Tenant));

    public TriggerKey TriggerKey => new(Name, Group(Tenant));

    public TimeZoneInfo TimeZone => TimeZoneInfo.FindSystemTimeZoneById(TimeZoneId);

    public CronExpression Expression => CronExpression.Parse(QuartzCron).WithTimeZone(TimeZone);

    public JobDataMap ToJobData()
    {
        var data = new JobDataMap();
        data.Add("id", Id.ToString());
        data.Add("tenant", Tenant);
        data.Add("name", Name);
        data.Add("cron", Cron);
        data.Add("quartzCron", QuartzCron);
        data.Add("timeZone", TimeZoneId);
        data.Add("job", JsonSerializer.Serialize(Job, Json));
        data.Add("createdAt", CreatedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        return data;
    }

    public static ScheduleDefinition FromJobData(JobDataMap data)
    {
        ArgumentNullException.ThrowIfNull(data);
        string Text(string key) => data.TryGetValue(key, out var value) && value?.ToString() is { } text
            ? text
            : throw new InvalidOperationException($"The stored schedule has no '{key}' in its job data.");
        return new ScheduleDefinition(
            Guid.Parse(Text("id")),
            Text("tenant"),
            Text("name"),
            Text("cron"),
            Text("quartzCron"),
            Text("timeZone"),
            JsonSerializer.Deserialize<SubmitScoringJob>(Text("job"), Json) ?? throw new InvalidOperationException("The stored schedule has an empty job."),
            DateTimeOffset.Parse(Text("createdAt"), System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The job template with every placeholder filled from <paramref name="fireTime"/>.</summary>
    public SubmitScoringJob Render(DateTimeOffset fireTime)
    {
        var zone = TimeZone;
        string Fill(string text) => SchedulePlaceholders.Render(text, fireTime, zone, Name);
        return Job with
        {
            Input = Fill(Job.Input),
            OutputParquet = Job.OutputParquet is null ? null : Fill(Job.OutputParquet),
            OutputTable = Job.OutputTable is null ? null : Fill(Job.OutputTable),
        };
    }
}
