using Quartz;

namespace BatchScoring.Application.Schedules;

/// <summary>
/// Cron expressions of schedules: the five-field crontab form ("0 2 * * *", day-of-week 0–7 with 0 and 7 Sunday;
/// day-of-month and day-of-week both restricted fire when either matches, as in Vixie cron), Quartz's own six or
/// seven fields (seconds first), and the @yearly/@monthly/@weekly/@daily/@hourly macros. Quartz rewrites each into
/// its canonical form, which is what the trigger stores.
/// </summary>
public static class ScheduleCron
{
    /// <summary>The expression in Quartz's form, or an error that says what is wrong and what is accepted.</summary>
    public static CronExpression? TryParse(string? text, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is required, e.g. \"0 2 * * *\" (02:00 every day).";
            return null;
        }

        var trimmed = text.Trim();
        var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        var format = trimmed.StartsWith('@') || fields == 5 ? CronFormat.Unix : fields is 6 or 7 ? CronFormat.Quartz : (CronFormat?)null;
        if (format is null)
        {
            error = $"'{trimmed}' has {fields} fields: give five (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"), "
                + "or Quartz's six or seven (seconds first, e.g. \"0 0 2 * * ?\").";
            return null;
        }

        if (CronExpression.TryParse(trimmed, format.Value, out var expression) && expression is not null)
        {
            return expression;
        }

        error = format == CronFormat.Unix
            ? $"'{trimmed}' is not a valid five-field cron expression (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\")."
            : $"'{trimmed}' is not a valid Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year], one of the two days '?', e.g. \"0 0 2 * * ?\").";
        return null;
    }

    /// <summary>A time zone by IANA id (or Windows id); null or empty is UTC.</summary>
    public static TimeZoneInfo? TryTimeZone(string? id, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(id))
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id.Trim());
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            error = $"'{id}' is not a known time zone; use an IANA id such as Europe/Paris or UTC.";
            return null;
        }
    }

    /// <summary>
    /// The latest fire time of <paramref name="cron"/> at or before <paramref name="at"/>: the slot a late fire (a misfire
    /// fired once on recovery) stands for. Searched in growing windows so that frequent schedules stay cheap.
    /// </summary>
    public static DateTimeOffset? LatestAtOrBefore(CronExpression cron, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(cron);
        var second = new DateTimeOffset(at.UtcTicks - (at.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        if (cron.IsSatisfiedBy(second))
        {
            return second;
        }

        foreach (var window in SearchWindows)
        {
            DateTimeOffset? latest = null;
            var next = cron.GetNextValidTimeAfter(second - window);
            for (var i = 0; next is { } n && n <= second && i < 200_000; i++)
            {
                latest = n;
                next = cron.GetNextValidTimeAfter(n);
            }

            if (latest is not null)
            {
                return latest;
            }
        }

        return null;
    }

    private static readonly TimeSpan[] SearchWindows =
        [TimeSpan.FromMinutes(2), TimeSpan.FromHours(2), TimeSpan.FromDays(2), TimeSpan.FromDays(32), TimeSpan.FromDays(400), TimeSpan.FromDays(366 * 8)];
}
