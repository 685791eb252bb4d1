using System.Diagnostics;
using System.Globalization;
using BatchScoring.Application.Challengers;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>What happened to one chunk message.</summary>
public enum ChunkOutcome
{
    Committed,
    AlreadyDone,

    /// <summary>The chunk failed for good (a permanent error, or its retry limits were reached); so did its job.</summary>
    Failed,

    /// <summary>A transient error outlasted the in-place retries: the reconciler re-sends the chunk after its backoff.</summary>
    RetryLater,
}

/// <summary>
/// Scores one chunk: reads its rows, runs the model in batches, and writes results, failed rows and the chunk's
/// state in one PostgreSQL transaction (see <see cref="ChunkCommit"/>), so a redelivered chunk is written once.
/// Parquet part files are named by chunk index and renamed into place before the commit; a redelivery rewrites the same name.
/// Every error ends in a recorded outcome (see <see cref="ChunkErrors"/> and docs/job-failures.md): a permanent one
/// fails the chunk and its job at once; a transient one is retried in place a few times, then left to the reconciler.
/// </summary>
public sealed partial class ChunkScorer(
    NpgsqlDataSource dataSource,
    JobStore store,
    ModelStore modelStore,
    ModelCache models,
    JobPlanCache plans,
    JobFinisher finisher,
    DriftSampleRecorder driftSamples,
    StorageRoots storageRoots,
    SqlInputs sqlInputs,
    IOptions<BatchScoringOptions> options,
    ILogger<ChunkScorer> logger)
{
    private static readonly string WorkerName = $"{Environment.MachineName}:{Environment.ProcessId}";

    public Task<ChunkOutcome> ScoreAsync(ScoreChunk chunk, CancellationToken cancellationToken) => ScoreAsync(chunk, TimeSpan.Zero, cancellationToken);

    /// <param name="queueWait">How long the message waited in the queue (recorded as the chunk's wait stage).</param>
    public async Task<ChunkOutcome> ScoreAsync(ScoreChunk chunk, TimeSpan queueWait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        var retry = options.Value.ChunkRetry;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await ScoreOnceAsync(chunk, new ChunkStageTimings(queueWait), cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw; // stopping (deploy, shutdown): the message goes back to the queue
            }
            catch (Exception ex) when (attempt < retry.InPlaceRetries)
            {
                ScoringMetrics.ChunkFailed("retry");
                logger.ChunkRetryingInPlace(chunk.JobId, chunk.ChunkIndex, ChunkErrors.Describe(ex));
                await Task.Delay(retry.InPlaceDelay(attempt), cancellationToken);
            }
            catch (Exception ex)
            {
                // Recording needs PostgreSQL; when it is down this throws, the message is dead-lettered, and the
                // reconciler finds the chunk once its job has been quiet for LostAfterSeconds.
                return await GiveUpForNowAsync(chunk, ex, cancellationToken);
            }
        }
    }

    private async Task<ChunkOutcome> GiveUpForNowAsync(ScoreChunk chunk, Exception error, CancellationToken cancellationToken)
    {
        var retry = options.Value.ChunkRetry;
        var reason = ChunkErrors.Describe(error);
        var recorded = await ChunkCommit.RecordTransientFailureAsync(
            dataSource, chunk.JobId, chunk.ChunkIndex, reason,
            TimeSpan.FromSeconds(retry.BackoffSeconds), TimeSpan.FromSeconds(retry.MaxBackoffSeconds), cancellationToken);
        if (recorded is not { } state)
        {
            return ChunkOutcome.AlreadyDone;
        }

        var span = DateTimeOffset.UtcNow - state.FirstFailedAt;
        if (state.Failures >= retry.MaxFailures || span >= TimeSpan.FromMinutes(retry.MaxRetryMinutes))
        {
            return await FailChunkAsync(
                chunk,
                string.Create(CultureInfo.InvariantCulture, $"gave up after {state.Failures} failed deliveries over {span.TotalMinutes:0.#} minutes; last error: {reason}"),
                "retries_exhausted",
                cancellationToken);
        }

        var retryAt = state.NextAttemptAt;
        ScoringMetrics.ChunkFailed("retry_later");
        logger.ChunkRetryLater(chunk.JobId, chunk.ChunkIndex, state.Failures, retry.MaxFailures, retryAt, reason);
        return ChunkOutcome.RetryLater;
    }

    private async Task<ChunkOutcome> ScoreOnceAsync(ScoreChunk chunk, ChunkStageTimings timings, CancellationToken cancellationToken)
    {
        await using var commit = await ChunkCommit.BeginAsync(dataSource, chunk.JobId, chunk.ChunkIndex, WorkerName, cancellationToken);
        if (commit is null)
        {
            ScoringMetrics.ChunkDuplicates.Add(1);
            // A chunk already ended. If its commit was the job's last and that consume was stopped before the finisher
            // ran (a broker outage or a shutdown cancels it), this redelivery finishes the job now, rather than the
            // reconciler once the job has been quiet for LostAfterSeconds. A no-op while chunks are pending.
            await finisher.TryFinishAsync(chunk.JobId, cancellationToken);
            return ChunkOutcome.AlreadyDone;
        }

        // Attempts before this one that recorded no outcome: the worker died on this chunk (a poison message?).
        var crashes = commit.Chunk.OpenAttempts - 1;
        if (crashes >= options.Value.ChunkRetry.MaxCrashes)
        {
            await commit.DisposeAsync();
            return await FailChunkAsync(
                chunk,
                $"{crashes} attempts stopped without an outcome (the worker died while scoring it); not tried again"
                    + (commit.Chunk.LastError is { } last ? $"; last error: {last}" : ""),
                "poison",
                cancellationToken);
        }

        try
        {
            return await ScoreLockedAsync(commit, chunk, timings, cancellationToken);
        }
        catch (Exception ex) when (ChunkErrors.IsPermanent(ex) && !cancellationToken.IsCancellationRequested)
        {
            await commit.DisposeAsync();
            return await FailChunkAsync(chunk, ChunkErrors.Describe(ex), "permanent", cancellationToken);
        }
        catch (Exception)
        {
            // This attempt ends with an outcome the caller handles (retry, reconciler, redelivery after a shutdown):
            // close it, so that only attempts that end without any outcome (a dead worker) count as crashes.
            await commit.DisposeAsync();
            await Quietly(() => ChunkCommit.ReleaseAttemptAsync(dataSource, chunk.JobId, chunk.ChunkIndex, CancellationToken.None));
            throw;
        }
    }

    /// <summary>Fails the chunk for good; the job cannot succeed any more, so it fails too, with the rest of its chunks.</summary>
    private async Task<ChunkOutcome> FailChunkAsync(ScoreChunk chunk, string reason, string kind, CancellationToken cancellationToken)
    {
        ScoringMetrics.ChunkFailed(kind);
        logger.ChunkFailed(chunk.JobId, chunk.ChunkIndex, reason);
        var progress = await ChunkCommit.FailChunkAsync(dataSource, chunk.JobId, chunk.ChunkIndex, WorkerName, reason, cancellationToken);
        if (progress is not null)
        {
            await finisher.FailAsync(chunk.JobId, $"chunk {chunk.ChunkIndex} failed: {reason}", cancellationToken);
            plans.Forget(chunk.JobId);
        }

        return ChunkOutcome.Failed;
    }

    private async Task<ChunkOutcome> ScoreLockedAsync(ChunkCommit commit, ScoreChunk chunk, ChunkStageTimings timings, CancellationToken cancellationToken)
    {
        var job = await plans.GetAsync(chunk.JobId, commit.JobRetries, () => LoadPlanAsync(chunk.JobId, chunk.Path), cancellationToken);
        var spec = ChunkRanges.ToSpec(chunk);
        using var lease = models.Acquire(job.ModelVersion);
        var context = new ResultRowContext(job.Job.Id, null, job.Job.ModelName, job.Job.ModelVersion, DateTimeOffset.UtcNow);

        // A challenger scores the same slices in the same pass; its rows and the comparison commit with the champion's.
        var challenger = job.Challenger;
        using var challengerLease = challenger is null ? null : models.Acquire(challenger.ModelVersion);
        var run = new ChunkRun(commit, job, spec, lease, context)
        {
            Timings = timings,
            ChallengerLease = challengerLease,
            ChallengerContext = challenger is null ? null : context with { ModelName = challenger.Plan.Model, ModelVersion = challenger.Plan.Version },
            Comparison = challenger is null ? null : new ChunkComparison(challenger.Plan),
        };

        // Reading, inference and the writes (COPY, Parquet) of consecutive batches overlap; see ChunkScorer.Pipeline.cs.
        await RunPipelineAsync(run, cancellationToken);

        var comparison = run.Comparison;
        if (comparison is not null)
        {
            var (buckets, counts) = comparison.Differences.Buckets();
            await ChallengerStore.WriteChunkStatsAsync(
                commit,
                new ChallengerChunkStats(
                    chunk.ChunkIndex, comparison.RowsCompared, comparison.ChallengerFailedRows, comparison.LabelsCompared, comparison.LabelsAgreed,
                    comparison.Differences.ZeroCount, buckets, counts, comparison.Differences.Max),
                cancellationToken);
        }

        var failedCopyStart = Stopwatch.GetTimestamp();
        await commit.WriteFailedRowsAsync(run.Failures, cancellationToken);
        timings.AddSince(ChunkStage.Copy, failedCopyStart);
        commit.Stages = timings.ToSeconds();
        var progress = await commit.CompleteAsync(run.ScoredRows, run.Failures.Count, cancellationToken);
        timings.RecordMetrics();
        ScoringMetrics.RowsScored.Add(run.ScoredRows, ScoringMetrics.ModelTags(job.Job.ModelName, "job"));
        ScoringMetrics.RowsFailed.Add(run.Failures.Count, ScoringMetrics.ModelTags(job.Job.ModelName, "job"));
        ScoringMetrics.ChunksCompleted.Add(1);
        if (comparison is not null)
        {
            ChallengerMetrics.RowsCompared.Add(comparison.RowsCompared);
        }

        await FinishIfDoneAsync(progress, job.Job, cancellationToken);
        return ChunkOutcome.Committed;
    }

    private async Task FinishIfDoneAsync(JobProgress progress, JobEntity job, CancellationToken cancellationToken)
    {
        if (progress.AllChunksFinished)
        {
            await finisher.TryFinishAsync(progress.JobId, cancellationToken);
            plans.Forget(progress.JobId);
        }
        else if (progress.State == JobState.Running && ThresholdExceeded(job, progress.FailedRows) is { } reason)
        {
            // Failed rows stay counted, so the job cannot end below its threshold any more: stop spending work on it.
            await finisher.FailAsync(progress.JobId, reason, cancellationToken);
            plans.Forget(progress.JobId);
        }
    }

    /// <summary>The reason a job fails on its error threshold (as <see cref="JobStore.TryFinishJobAsync"/> words it), or null.</summary>
    public static string? ThresholdExceeded(JobEntity job, long failedRows)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.ErrorThresholdRows is { } rows && failedRows > rows)
        {
            return $"{failedRows} failed rows exceed the error threshold of {rows} rows";
        }

        var percent = failedRows * 100.0 / Math.Max(job.TotalRows, 1);
        return job.ErrorThresholdPercent is { } limit && failedRows > 0 && percent > limit
            ? string.Create(CultureInfo.InvariantCulture, $"{failedRows} failed rows ({percent:0.##}%) exceed the error threshold of {limit}%")
            : null;
    }

    private static string? KeyText(ColumnBatch rows, string keyColumn, int row) =>
        rows.Find(keyColumn)?.GetValue(row) is { } value ? Convert.ToString(value, CultureInfo.InvariantCulture) : null;

    private static ColumnBatch BuildOutputRows(JobPlan job, ColumnBatch slice, ScoreResult result)
    {
        var all = result.ScoredRows.Length == slice.RowCount;
        var columns = new List<BatchColumn>(job.CarriedColumns.Count + result.Outputs.Columns.Count);
        foreach (var name in job.CarriedColumns)
        {
            var column = slice[name];
            columns.Add(all ? column : column.Take(result.ScoredRows));
        }

        columns.AddRange(result.Outputs.Columns);
        return new ColumnBatch(columns);
    }

    /// <summary>Key-value footer metadata of a part: which job, model version and chunk wrote it, readable without the database.</summary>
    public static IReadOnlyDictionary<string, string> PartMetadata(ResultRowContext context, string modelSha256, int chunkIndex) => new Dictionary<string, string>
    {
        ["batchscoring.job_id"] = context.JobId?.ToString() ?? "",
        ["batchscoring.model_name"] = context.ModelName,
        ["batchscoring.model_version"] = context.ModelVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["batchscoring.model_sha256"] = modelSha256,
        ["batchscoring.chunk_index"] = chunkIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string PartFileName(int chunkIndex) => $"part-{chunkIndex:D6}.parquet";

    /// <summary>Schema of a Parquet part file: carried input columns, model outputs, then the lineage columns.</summary>
    public static IReadOnlyList<SourceColumn> PartColumns(IEnumerable<SourceColumn> carried, IEnumerable<(string Name, ColumnKind Kind)> outputs) =>
        carried.Select(c => c with { Nullable = true })
            .Concat(outputs.Select(o => new SourceColumn(o.Name, o.Kind, true)))
            .Append(new SourceColumn("job_id", ColumnKind.String, false))
            .Append(new SourceColumn("model_name", ColumnKind.String, false))
            .Append(new SourceColumn("model_version", ColumnKind.Int32, false))
            .Append(new SourceColumn("scored_at", ColumnKind.Timestamp, false))
            .ToArray();

    /// <summary>
    /// The job as the submitter planned it (<see cref="ScoringPlan"/> on the job row). A job submitted before plans were
    /// stored is planned here from the chunk's file, the way the submitter plans.
    /// </summary>
    private async Task<JobPlan> LoadPlanAsync(Guid jobId, string samplePath)
    {
        await Task.Yield();
        var cancellationToken = CancellationToken.None; // shared by every chunk of the job on this worker
        var job = await store.GetJobAsync(jobId, cancellationToken)
            ?? throw new JobPlanException($"Job {jobId} does not exist.");
        var version = await modelStore.GetModelVersionAsync(job.ModelName, job.ModelVersion, cancellationToken)
            ?? throw new JobPlanException($"Model '{job.ModelName}' v{job.ModelVersion} is no longer registered.");
        var format = Enum.Parse<DatasetFormat>(job.InputFormat, ignoreCase: true);
        ScoringPlan plan;
        InputMapping mapping;
        using (var lease = models.Acquire(version))
        {
            plan = job.Plan is { } stored
                ? ScoringPlan.FromJson(job.Id, stored)
                : ScoringPlan.Create(
                    await Dataset.ReadColumnsAsync(format, samplePath, storageRoots, cancellationToken),
                    lease.Model, job.KeyColumn, job.PassthroughColumns, job.FeatureColumns);
            mapping = plan.MapInputs(lease.Model, job.KeyColumn, job.PassthroughColumns);
        }

        var table = job.OutputTable is null ? null : plan.DefineResultTable(job.OutputTable, job.KeyColumn, job.PassthroughColumns);
        return new JobPlan(job, version, format, plan, mapping, table, plan.PartColumns())
        {
            Challenger = plan.Challenger is { } challenger ? await LoadChallengerAsync(job, plan, challenger, cancellationToken) : null,
        };
    }

    private async Task<ChallengerJobPlan> LoadChallengerAsync(JobEntity job, ScoringPlan plan, ChallengerPlan challenger, CancellationToken cancellationToken)
    {
        var version = await modelStore.GetModelVersionAsync(challenger.Model, challenger.Version, cancellationToken)
            ?? throw new JobPlanException($"Challenger '{challenger.Model}' v{challenger.Version} is no longer registered.");
        InputMapping mapping;
        using (var lease = models.Acquire(version))
        {
            mapping = plan.MapInputs(lease.Model, job.KeyColumn, job.PassthroughColumns);
        }

        return new ChallengerJobPlan(
            challenger,
            version,
            mapping,
            job.OutputTable is null ? null : plan.DefineChallengerTable(ChallengerPlan.TableName(job.OutputTable), job.KeyColumn, job.PassthroughColumns),
            job.OutputParquet is null ? null : ChallengerPlan.ParquetPath(job.OutputParquet),
            plan.ChallengerPartColumns());
    }

    /// <summary>Once per file and job on this worker: the file must still have the planned columns (a Parquet footer, a CSV header and first rows).</summary>
    private async Task CheckFileAsync(JobPlan job, string path) =>
        job.Plan.EnsureMatches(path, await Dataset.ReadColumnsAsync(job.Format, path, storageRoots, CancellationToken.None));

    private static async Task Quietly(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception)
        {
            // Best effort: without it the interrupted attempt counts towards MaxCrashes.
        }
    }
}
