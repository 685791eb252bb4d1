using System.Diagnostics.Metrics;

namespace BatchScoring.Application.Challengers;

/// <summary>Champion / challenger instruments on the service's "BatchScoring" meter.</summary>
public static class ChallengerMetrics
{
    public const string MeterName = "BatchScoring";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Rows scored by both a job's model and its challenger (committed chunks only).</summary>
    public static readonly Counter<long> RowsCompared = Meter.CreateCounter<long>(
        "batchscoring.challenger.rows_compared", unit: "{row}", description: "Rows scored by both a job's model and its challenger.");
}
