using System.Globalization;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>The <c>stages</c> line of <c>jobs status</c>: where the job's time went (docs/job-timing.md).</summary>
internal static class StageLines
{
    public static IEnumerable<string> Describe(JobStageSeconds? stages)
    {
        if (stages is null || stages.Reading + stages.Converting + stages.Inferring + stages.Copying + stages.WritingParquet + stages.Waiting <= 0)
        {
            yield break;
        }

        yield return string.Create(
            CultureInfo.InvariantCulture,
            $"  stages     read {stages.Reading:0.000} s, convert {stages.Converting:0.000} s, infer {stages.Inferring:0.000} s, "
            + $"copy {stages.Copying:0.000} s, parquet {stages.WritingParquet:0.000} s, queue wait {stages.Waiting:0.000} s");
    }
}
