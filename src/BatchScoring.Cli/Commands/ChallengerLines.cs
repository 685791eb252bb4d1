using System.Globalization;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>The challenger part of `jobs status` (docs/challenger.md).</summary>
internal static class ChallengerLines
{
    public static IEnumerable<string> Describe(ChallengerStatus? challenger)
    {
        if (challenger is null)
        {
            yield break;
        }

        yield return $"  challenger {challenger.Model} v{challenger.ModelVersion} (sha256 {challenger.ModelSha256[..Math.Min(12, challenger.ModelSha256.Length)]})";
        if (challenger.OutputTable is not null)
        {
            yield return $"    table    {challenger.OutputTable}";
        }

        if (challenger.OutputParquet is not null)
        {
            yield return $"    parquet  {challenger.OutputParquet}";
        }

        if (challenger.Comparison is not { } c)
        {
            yield break;
        }

        yield return $"    compared {c.RowsCompared:N0} rows{(c.Final ? "" : " so far")}" + (c.ChallengerFailedRows > 0 ? $", {c.ChallengerFailedRows:N0} the challenger could not score" : "");
        if (c.AgreementRate is { } agreement)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"    agreement {agreement:P2} same predicted label");
        }

        if (c.ScoreDifference is { } d)
        {
            yield return string.Create(
                CultureInfo.InvariantCulture,
                $"    |diff|   p50 {d.P50:G4}  p90 {d.P90:G4}  p99 {d.P99:G4}  max {d.Max:G4}  ({d.ChampionColumn} vs {d.ChallengerColumn})");
        }

        foreach (var m in c.RealisedMetrics ?? [])
        {
            var values = new[] { ("accuracy", m.Accuracy), ("rmse", m.Rmse), ("mae", m.Mae) }
                .Where(v => v.Item2 is not null)
                .Select(v => string.Create(CultureInfo.InvariantCulture, $"{v.Item1} {v.Item2:G4}"));
            yield return $"    realised {m.Role} {m.Model} v{m.ModelVersion}: {string.Join(", ", values)} over {m.LabelledRows:N0} labelled rows";
        }
    }
}
