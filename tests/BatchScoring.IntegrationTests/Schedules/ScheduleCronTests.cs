using System.Globalization;
using BatchScoring.Application.Schedules;

namespace BatchScoring.IntegrationTests.Schedules;

/// <summary>Pure unit tests: cron parsing against Cronos (an independent implementation) and placeholder filling against the BCL.</summary>
public sealed class ScheduleCronTests
{
    private static readonly TimeZoneInfo Paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");

    [Theory]
    [InlineData("0 2 * * *")]
    [InlineData("30 4 * * 1")]
    [InlineData("*/15 9-17 * * 1-5")]
    [InlineData("0 0 * * 0")]
    [InlineData("0 0 * * 7")]
    [InlineData("5 4 * * sun")]
    [InlineData("0 0 1,15 * *")]
    [InlineData("0 0 L * *")]
    [InlineData("0 12 * jan,jul *")]
    [InlineData("@daily")]
    [InlineData("@hourly")]
    public void Five_field_cron_fires_when_cronos_says_it_does_across_a_daylight_saving_change(string cron)
    {
        var quartz = ScheduleCron.TryParse(cron, out var error);
        Assert.True(quartz is not null, error);
        var expression = quartz.WithTimeZone(Paris);
        var reference = Cronos.CronExpression.Parse(cron);

        // From before the spring-forward of 2026-03-29 in Paris, over a few weeks.
        var from = new DateTimeOffset(2026, 3, 20, 0, 0, 0, TimeSpan.Zero);
        var ours = Occurrences(from, t => expression.GetNextValidTimeAfter(t));
        var theirs = Occurrences(from, t => reference.GetNextOccurrence(t, Paris));
        Assert.Equal(theirs, ours);
    }

    [Fact]
    public void Both_days_restricted_fire_when_either_matches_as_in_vixie_cron()
    {
        // Cronos requires both; Vixie cron (and so the schedules) fire on the 1st and on every Monday.
        var expression = ScheduleCron.TryParse("0 0 1 * 1", out _)!.WithTimeZone(TimeZoneInfo.Utc);
        var fires = Occurrences(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero), t => expression.GetNextValidTimeAfter(t), 6);
        var expected = Enumerable.Range(1, 60).Select(d => new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero).AddDays(d))
            .Where(d => d.Day == 1 || d.DayOfWeek == DayOfWeek.Monday).Take(6);
        Assert.Equal(expected, fires);
    }

    [Theory]
    [InlineData("0 0 2 * * ?", true)]
    [InlineData("*/3 * * * * ?", true)]
    [InlineData("0 0 2 ? * MON-FRI 2027", true)]
    [InlineData("0 25 * * *", false)]
    [InlineData("0 2 * *", false)]
    [InlineData("0 0 25 * * ?", false)]
    [InlineData("", false)]
    public void Quartz_syntax_is_accepted_and_invalid_expressions_say_why(string cron, bool valid)
    {
        var parsed = ScheduleCron.TryParse(cron, out var error);
        Assert.Equal(valid, parsed is not null);
        Assert.Equal(valid, error is null);
    }

    [Theory]
    [InlineData("Europe/Paris", true)]
    [InlineData("UTC", true)]
    [InlineData(null, true)]
    [InlineData("Mars/Olympus", false)]
    public void Time_zones_are_iana_ids_and_none_is_utc(string? id, bool valid)
    {
        var zone = ScheduleCron.TryTimeZone(id, out var error);
        Assert.Equal(valid, zone is not null);
        if (id is null)
        {
            Assert.Equal(TimeZoneInfo.Utc, zone);
        }

        Assert.Equal(!valid, error?.Contains(id!, StringComparison.Ordinal) ?? false);
    }

    [Fact]
    public void Placeholders_are_filled_from_the_fire_time_in_the_schedule_time_zone()
    {
        // 23:30 UTC on 31 March is 01:30 on 1 April in Paris (summer time, UTC+2).
        var fire = new DateTimeOffset(2026, 3, 31, 23, 30, 0, TimeSpan.Zero);
        Assert.Equal("/d/2026-04-01.parquet", SchedulePlaceholders.Render("/d/{date:yyyy-MM-dd}.parquet", fire, Paris, "n"));
        Assert.Equal("/d/2026-04-01", SchedulePlaceholders.Render("/d/{date}", fire, Paris, "n"));
        Assert.Equal("/d/2026-03-31", SchedulePlaceholders.Render("/d/{utc}", fire, Paris, "n"));
        Assert.Equal("/d/2026/03/31/01", SchedulePlaceholders.Render("/d/{date-1d:yyyy/MM/dd}/{date:HH}", fire, Paris, "n"));
        Assert.Equal("/d/2026-04-01T03", SchedulePlaceholders.Render("/d/{date+2h:yyyy-MM-dd'T'HH}", fire, Paris, "n"));
        Assert.Equal("results_nightly_20260401", SchedulePlaceholders.Render("results_{name}_{date:yyyyMMdd}", fire, Paris, "nightly"));
        Assert.Equal("/d/{literal}", SchedulePlaceholders.Render("/d/{{literal}}", fire, Paris, "n"));

        // A calendar day back across the spring-forward keeps the wall-clock time (02:30 did not exist on 29 March: 03:30).
        var afterChange = new DateTimeOffset(2026, 3, 30, 0, 30, 0, TimeSpan.Zero); // 02:30 Paris on 30 March
        Assert.Equal("2026-03-29 03:30", SchedulePlaceholders.Render("{date-1d:yyyy-MM-dd HH:mm}", afterChange, Paris, "n"));
    }

    [Theory]
    [InlineData("/d/{day}.csv")]
    [InlineData("/d/{date:}.csv")]
    [InlineData("/d/{date.csv")]
    [InlineData("/d/}date.csv")]
    [InlineData("/d/{name:yyyy}.csv")]
    [InlineData("/d/{date-1y}.csv")]
    public void A_bad_placeholder_is_refused_naming_it(string template)
    {
        var error = Assert.Throws<PlaceholderException>(() => SchedulePlaceholders.Render(template, DateTimeOffset.UnixEpoch, Paris, "n"));
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_late_fire_stands_for_the_latest_slot_it_missed()
    {
        var hourly = ScheduleCron.TryParse("0 * * * *", out _)!.WithTimeZone(Paris);
        var late = new DateTimeOffset(2026, 5, 4, 10, 17, 42, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 5, 4, 10, 0, 0, TimeSpan.Zero), ScheduleCron.LatestAtOrBefore(hourly, late));
        Assert.Equal(new DateTimeOffset(2026, 5, 4, 10, 0, 0, TimeSpan.Zero), ScheduleCron.LatestAtOrBefore(hourly, new DateTimeOffset(2026, 5, 4, 10, 0, 0, TimeSpan.Zero)));

        var yearly = ScheduleCron.TryParse("0 2 1 1 *", out _)!.WithTimeZone(Paris);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 2, 0, 0, TimeSpan.FromHours(1)), ScheduleCron.LatestAtOrBefore(yearly, late));
    }

    private static List<DateTimeOffset> Occurrences(DateTimeOffset from, Func<DateTimeOffset, DateTimeOffset?> next, int count = 40)
    {
        var fires = new List<DateTimeOffset>();
        for (var t = next(from); t is { } at && fires.Count < count; t = next(at))
        {
            fires.Add(at.ToUniversalTime());
        }

        return fires;
    }
}
