using System.Text.Json;
using BatchScoring.Contracts;
using BatchScoring.Data;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application.Challengers;

/// <summary>
/// The comparison of a job's model and challenger: merged from the chunks' partial aggregates (written in each chunk's
/// commit), stored in <c>scoring.challenger_comparisons</c> when the job ends, and read by the status API.
/// </summary>
public sealed class ChallengerComparisons(ChallengerStore store, JobStore jobs, ILogger<ChallengerComparisons> logger)
{
    public const string ManifestFileName = "_SUCCESS";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The job's challenger as planned at submit; null for a job without one (or without a readable plan).</summary>
    public static ChallengerPlan? PlanOf(JobEntity job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Plan is null)
        {
            return null;
        }

        try
        {
            return ScoringPlan.FromJson(job.Id, job.Plan).Challenger;
        }
        catch (JobPlanException)
        {
            return null; // the job fails on its plan anyway; the status still answers
        }
    }

    /// <summary>Where the challenger's results are (no comparison); null for a job without a challenger.</summary>
    public static ChallengerStatus? StatusOf(JobEntity job) => PlanOf(job) is { } plan
        ? new ChallengerStatus
        {
            Model = plan.Model,
            ModelVersion = plan.Version,
            ModelSha256 = plan.Sha256,
            OutputTable = job.OutputTable is null ? null : ChallengerPlan.TableName(job.OutputTable),
            OutputParquet = job.OutputParquet is null ? null : ChallengerPlan.ParquetPath(job.OutputParquet),
        }
        : null;

    /// <summary>The stored comparison of an ended job (with realised metrics from the labels known now), else one merged from the chunks committed so far.</summary>
    public async Task<ChallengerComparison?> CurrentAsync(JobEntity job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (PlanOf(job) is not { } plan)
        {
            return null;
        }

        if (job.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled)
        {
            // An ended job's chunks are all committed: their merge is final even in the moment before the finisher
            // stores it. Labels arrive days after scoring, so the realised metrics are read now, not when the job ended.
            var comparison = await store.GetComparisonAsync(job.Id, cancellationToken) is { } stored
                ? FromRow(stored)
                : ToComparison(Merge(await store.GetChunkStatsAsync(job.Id, cancellationToken)), plan, final: true, realised: null);
            return await RealisedMetricsAsync(job, plan, cancellationToken) is { } realised ? comparison with { RealisedMetrics = realised } : comparison;
        }

        return ToComparison(Merge(await store.GetChunkStatsAsync(job.Id, cancellationToken)), plan, final: false, realised: null);
    }

    /// <summary>
    /// Merges the chunks' comparisons into <c>scoring.challenger_comparisons</c> (again when a retried job ends again)
    /// and, for a job that succeeded with Parquet output, writes <c>challenger/_SUCCESS</c>.
    /// </summary>
    public async Task StoreAsync(JobEntity job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (PlanOf(job) is not { } plan)
        {
            return;
        }

        var merged = Merge(await store.GetChunkStatsAsync(job.Id, cancellationToken));
        var realised = await RealisedMetricsAsync(job, plan, cancellationToken);
        var comparison = ToComparison(merged, plan, final: true, realised);
        await store.UpsertComparisonAsync(
            new ChallengerComparisonRow(
                job.Id, job.ModelName, job.ModelVersion, plan.Model, plan.Version, StateText.ToDb(job.State),
                comparison.RowsCompared, comparison.ChallengerFailedRows, merged.LabelsCompared, comparison.AgreementRate,
                plan.ChampionScore, plan.ChallengerScore,
                comparison.ScoreDifference?.P50, comparison.ScoreDifference?.P90, comparison.ScoreDifference?.P99, comparison.ScoreDifference?.Max,
                realised is null ? null : JsonSerializer.Serialize(realised, Json),
                DateTimeOffset.UtcNow),
            cancellationToken);

        if (job.State == JobState.Succeeded && job.OutputParquet is not null)
        {
            await WriteManifestAsync(job, plan, cancellationToken);
        }

        logger.LogInformation(
            "Job {JobId}: challenger {Challenger} v{Version} compared on {Rows} rows (agreement {Agreement}, p99 |diff| {P99})",
            job.Id, plan.Model, plan.Version, comparison.RowsCompared, comparison.AgreementRate, comparison.ScoreDifference?.P99);
    }

    /// <summary>
    /// Each version's realised metrics against delayed labels (<c>labels ingest</c>), or null when the job writes no
    /// table or no key of the job has a label.
    /// </summary>
    public async Task<IReadOnlyList<RealisedMetrics>?> RealisedMetricsAsync(JobEntity job, ChallengerPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(plan);
        if (job.OutputTable is null || job.Plan is null)
        {
            return null;
        }

        var championOutputs = ScoringPlan.FromJson(job.Id, job.Plan).Outputs;
        var champion = await store.TryComputeRealisedMetricsAsync(
            job.OutputTable, job.Id, job.ModelName, job.KeyColumn,
            ChallengerPlan.LabelColumn(championOutputs), ChallengerPlan.ScoreColumn(championOutputs), cancellationToken);
        var challenger = await store.TryComputeRealisedMetricsAsync(
            ChallengerPlan.TableName(job.OutputTable), job.Id, job.ModelName, job.KeyColumn,
            ChallengerPlan.LabelColumn(plan.Outputs), ChallengerPlan.ScoreColumn(plan.Outputs), cancellationToken);
        if (champion is null && challenger is null)
        {
            return null;
        }

        var metrics = new List<RealisedMetrics>();
        if (champion is { } c)
        {
            metrics.Add(new RealisedMetrics("champion", job.ModelName, job.ModelVersion, c.Rows, c.Accuracy, c.Rmse, c.Mae));
        }

        if (challenger is { } h)
        {
            metrics.Add(new RealisedMetrics("challenger", plan.Model, plan.Version, h.Rows, h.Accuracy, h.Rmse, h.Mae));
        }

        return metrics;
    }

    /// <summary>The sum of the chunks' comparisons.</summary>
    public static MergedComparison Merge(IReadOnlyList<ChallengerChunkStats> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        var sketch = new ScoreDifferenceSketch();
        long rows = 0, failed = 0, labels = 0, agreed = 0;
        foreach (var chunk in chunks)
        {
            rows += chunk.RowsCompared;
            failed += chunk.ChallengerFailedRows;
            labels += chunk.LabelsCompared;
            agreed += chunk.LabelsAgreed;
            sketch.Merge(chunk.DiffZeroCount, chunk.DiffBuckets, chunk.DiffCounts, chunk.DiffMax);
        }

        return new MergedComparison(rows, failed, labels, agreed, sketch);
    }

    private static ChallengerComparison ToComparison(MergedComparison merged, ChallengerPlan plan, bool final, IReadOnlyList<RealisedMetrics>? realised)
    {
        var sketch = merged.Differences;
        return new ChallengerComparison
        {
            Final = final,
            RowsCompared = merged.RowsCompared,
            ChallengerFailedRows = merged.ChallengerFailedRows,
            AgreementRate = merged.LabelsCompared > 0 ? (double)merged.LabelsAgreed / merged.LabelsCompared : null,
            ScoreDifference = plan.ChampionScore is { } a && plan.ChallengerScore is { } b && sketch.Count > 0
                ? new ScoreDifference(a, b, sketch.Quantile(0.5)!.Value, sketch.Quantile(0.9)!.Value, sketch.Quantile(0.99)!.Value, sketch.Max!.Value)
                : null,
            RealisedMetrics = realised,
        };
    }

    private static ChallengerComparison FromRow(ChallengerComparisonRow row) => new()
    {
        Final = true,
        RowsCompared = row.RowsCompared,
        ChallengerFailedRows = row.ChallengerFailedRows,
        AgreementRate = row.AgreementRate,
        ScoreDifference = row is { ChampionScoreColumn: { } a, ChallengerScoreColumn: { } b, DiffP50: { } p50, DiffP90: { } p90, DiffP99: { } p99, DiffMax: { } max }
            ? new ScoreDifference(a, b, p50, p90, p99, max)
            : null,
        RealisedMetrics = row.RealisedMetricsJson is null ? null : JsonSerializer.Deserialize<List<RealisedMetrics>>(row.RealisedMetricsJson, Json),
    };

    private async Task WriteManifestAsync(JobEntity job, ChallengerPlan plan, CancellationToken cancellationToken)
    {
        var folder = ChallengerPlan.ParquetPath(job.OutputParquet!);
        var chunks = await jobs.GetChunksAsync(job.Id, cancellationToken);
        var parts = await ParquetManifestParts.DescribeAsync(
            folder, chunks.Where(c => c.State == ChunkState.Succeeded).OrderBy(c => c.ChunkIndex).Select(c => ChunkScorer.PartFileName(c.ChunkIndex)), cancellationToken);
        var manifest = new
        {
            jobId = job.Id,
            model = plan.Model,
            modelVersion = plan.Version,
            modelSha256 = plan.Sha256,
            championModel = job.ModelName,
            championVersion = job.ModelVersion,
            keyColumn = job.KeyColumn,
            completedAt = job.FinishedAt ?? DateTimeOffset.UtcNow,
            parts,
        };
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, ManifestFileName);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, JsonSerializer.Serialize(manifest, Json), cancellationToken);
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>The chunks' comparisons added up.</summary>
public sealed record MergedComparison(long RowsCompared, long ChallengerFailedRows, long LabelsCompared, long LabelsAgreed, ScoreDifferenceSketch Differences);
