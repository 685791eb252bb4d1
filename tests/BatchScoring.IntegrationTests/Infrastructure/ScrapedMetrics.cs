using System.Globalization;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>Values read from a host's <c>/metrics</c> (Prometheus text), as an operator's scraper sees them.</summary>
internal static class ScrapedMetrics
{
    /// <summary>The value of one series, e.g. <c>batchscoring_requests_total{outcome="scored"}</c>; 0 when it is not exported yet.</summary>
    public static async Task<double> ValueAsync(HttpClient client, string series, CancellationToken cancellationToken)
    {
        var text = await client.GetStringAsync("/metrics", cancellationToken);
        return Value(text, series);
    }

    public static double Value(string text, string series)
    {
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line.AsSpan(series.Length + 1).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
