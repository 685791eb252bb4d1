using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace BatchScoring.Application.Schedules;

/// <summary>A template with a placeholder that does not exist or a format that cannot be used.</summary>
public sealed class PlaceholderException(string message) : Exception(message);

/// <summary>
/// Placeholders in a schedule's paths and table name, filled from the fire time in the schedule's time zone:
/// <c>{date}</c> (= <c>{date:yyyy-MM-dd}</c>), <c>{date:FORMAT}</c> (a .NET custom date format, invariant culture),
/// <c>{date-1d:FORMAT}</c> / <c>{date+6h:FORMAT}</c> (shifted by days, hours or minutes; days are calendar days in the
/// time zone), <c>{utc:FORMAT}</c> (the same in UTC), <c>{name}</c> (the schedule's name); <c>{{</c> and <c>}}</c>
/// are literal braces.
/// </summary>
public static partial class SchedulePlaceholders
{
    public const string DefaultFormat = "yyyy-MM-dd";

    /// <summary>Fills every placeholder of <paramref name="template"/>; throws <see cref="PlaceholderException"/> naming a bad one.</summary>
    public static string Render(string template, DateTimeOffset fireTime, TimeZoneInfo timeZone, string scheduleName)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(timeZone);
        var result = new StringBuilder(template.Length);
        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (c == '{' && i + 1 < template.Length && template[i + 1] == '{')
            {
                result.Append('{');
                i++;
            }
            else if (c == '}' && i + 1 < template.Length && template[i + 1] == '}')
            {
                result.Append('}');
                i++;
            }
            else if (c == '{')
            {
                var end = template.IndexOf('}', i + 1);
                if (end < 0)
                {
                    throw new PlaceholderException($"'{{' at position {i + 1} is not closed; write '{{{{' for a literal brace.");
                }

                result.Append(Fill(template[(i + 1)..end], fireTime, timeZone, scheduleName));
                i = end;
            }
            else if (c == '}')
            {
                throw new PlaceholderException($"'}}' at position {i + 1} closes nothing; write '}}}}' for a literal brace.");
            }
            else
            {
                result.Append(c);
            }
        }

        return result.ToString();
    }

    /// <summary>Whether the template has any placeholder (so a path that has none can be checked as it is).</summary>
    public static bool HasPlaceholders(string template) => template.Replace("{{", "", StringComparison.Ordinal).Contains('{', StringComparison.Ordinal);

    private static string Fill(string body, DateTimeOffset fireTime, TimeZoneInfo timeZone, string scheduleName)
    {
        var match = PlaceholderPattern().Match(body);
        if (!match.Success)
        {
            throw new PlaceholderException($"'{{{body}}}' is not a placeholder; use {{date}}, {{date:FORMAT}}, {{date-1d:FORMAT}}, {{utc:FORMAT}} or {{name}}.");
        }

        var name = match.Groups["name"].Value;
        var offset = match.Groups["offset"];
        var format = match.Groups["format"];
        if (name == "name")
        {
            return offset.Success || format.Success ? throw new PlaceholderException("{name} takes no offset or format.") : scheduleName;
        }

        var utc = name == "utc";
        var time = utc ? fireTime.ToUniversalTime() : TimeZoneInfo.ConvertTime(fireTime, timeZone);
        if (offset.Success)
        {
            var amount = int.Parse(offset.Value[1..^1], NumberStyles.None, CultureInfo.InvariantCulture) * (offset.Value[0] == '-' ? -1 : 1);
            time = offset.Value[^1] switch
            {
                // Calendar days keep the wall-clock time across a daylight-saving change.
                'd' => utc ? time.AddDays(amount) : Local(time.DateTime.AddDays(amount), timeZone),
                'h' => Convert(time.AddHours(amount), utc, timeZone),
                _ => Convert(time.AddMinutes(amount), utc, timeZone),
            };
        }

        var pattern = format.Success ? format.Value : DefaultFormat;
        if (pattern.Length == 0)
        {
            throw new PlaceholderException($"'{{{body}}}' has an empty format; leave out the ':' for {DefaultFormat}.");
        }

        try
        {
            // A single letter is a standard format ("d", "O"), which may put '/' or ':' in a path: custom formats only.
            return time.ToString(pattern.Length == 1 ? "%" + pattern : pattern, CultureInfo.InvariantCulture);
        }
        catch (FormatException)
        {
            throw new PlaceholderException($"'{{{body}}}': '{pattern}' is not a date format (e.g. yyyy-MM-dd, yyyyMMdd, HH).");
        }
    }

    private static DateTimeOffset Local(DateTime wallClock, TimeZoneInfo timeZone)
    {
        var unspecified = DateTime.SpecifyKind(wallClock, DateTimeKind.Unspecified);
        if (timeZone.IsInvalidTime(unspecified))
        {
            unspecified = unspecified.AddHours(1); // skipped by a spring-forward: the same wall time an hour on
        }

        return new DateTimeOffset(unspecified, timeZone.GetUtcOffset(unspecified));
    }

    private static DateTimeOffset Convert(DateTimeOffset time, bool utc, TimeZoneInfo timeZone) =>
        utc ? time.ToUniversalTime() : TimeZoneInfo.ConvertTime(time, timeZone);

    [GeneratedRegex(@"^(?<name>date|utc|name)(?<offset>[+-]\d{1,4}[dhm])?(:(?<format>[^{}]*))?$", RegexOptions.CultureInvariant)]
    private static partial Regex PlaceholderPattern();
}
