using System.Diagnostics.Metrics;

namespace BatchScoring.Application.Challengers;

/// <summary>Champion / challenger instruments on the service's "BatchScoring" meter.</summary>
public static class ChallengerMetrics
{
    private static readonly Meter Meter = ScoringMetrics.Meter;

    /// <summary>Rows scored by both a job's model and its challenger (committed chunks only).</summary>
    public static readonly Counter<long> RowsCompared = Meter.CreateCounter<long>(
        "batchscoring_challenger_rows_compared", description: "Rows scored by both a job's model and its challenger.");
}
