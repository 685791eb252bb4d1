using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>What happened to one chunk message.</summary>
public enum ChunkOutcome
{
    Committed,
    AlreadyDone,
    InputUnreadable,
}

/// <summary>
/// Scores one chunk: reads its rows, runs the model in batches, and writes results, failed rows and the chunk's
/// state in one PostgreSQL transaction (see <see cref="ChunkCommit"/>), so a redelivered chunk is written once.
/// Parquet part files are named by chunk index and renamed into place before the commit; a redelivery rewrites the same name.
/// </summary>
public sealed class ChunkScorer(
    NpgsqlDataSource dataSource,
    JobStore store,
    ModelCache models,
    JobFinisher finisher,
    DriftSampleRecorder driftSamples,
    ILogger<ChunkScorer> logger)
{
    private static readonly string WorkerName = $"{Environment.MachineName}:{Environment.ProcessId}";
    private readonly ConcurrentDictionary<Guid, Task<JobPlanContext>> _jobs = new();

    public async Task<ChunkOutcome> ScoreAsync(ScoreChunk chunk, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        await using var commit = await ChunkCommit.BeginAsync(dataSource, chunk.JobId, chunk.ChunkIndex, WorkerName, cancellationToken);
        if (commit is null)
        {
            ScoringMetrics.ChunkDuplicates.Inc();
            return ChunkOutcome.AlreadyDone;
        }

        var job = await GetContextAsync(chunk, cancellationToken);
        var spec = new ChunkSpec(chunk.ChunkIndex, chunk.Path, chunk.RowGroup, chunk.RowStart, chunk.RowCount, chunk.ByteOffset);
        SourceBatch source;
        try
        {
            source = await Dataset.ReadChunkAsync(job.Format, spec, job.ReadColumns, cancellationToken);
        }
        catch (DatasetException ex)
        {
            await commit.DisposeAsync();
            ScoringMetrics.ChunkFailures.WithLabels("input_unreadable").Inc();
            logger.LogWarning("Job {JobId} chunk {Chunk}: input unreadable: {Error}", chunk.JobId, chunk.ChunkIndex, ex.Message);
            var failed = await ChunkCommit.FailChunkAsync(dataSource, chunk.JobId, chunk.ChunkIndex, WorkerName, ex.Message, cancellationToken);
            if (failed is not null)
            {
                await FinishIfDoneAsync(failed, cancellationToken);
            }

            return ChunkOutcome.InputUnreadable;
        }

        using var lease = models.Acquire(job.ModelVersion);
        var context = new ResultRowContext(job.Job.Id, null, job.Job.ModelName, job.Job.ModelVersion, DateTimeOffset.UtcNow);
        var failures = new List<FailedRow>();
        var parts = job.Job.OutputParquet is null ? null : new List<ColumnBatch>();
        var issuesByRow = source.Issues.GroupBy(i => i.Row).ToDictionary(g => g.Key, g => g.First());
        var rows = source.Batch;
        long scored = 0;
        var batchRows = Math.Max(1, job.Job.BatchSize);
        var scoreOptions = new ScoreOptions { AllowNonFinite = job.Job.AllowNonFinite };
        var pendingCopy = Task.CompletedTask;
        try
        {
            for (var start = 0; start < rows.RowCount; start += batchRows)
            {
                var count = Math.Min(batchRows, rows.RowCount - start);
                var slice = start == 0 && count == rows.RowCount ? rows : rows.Slice(start, count);
                var watch = Stopwatch.StartNew();
                var result = lease.Model.Score(slice, job.Mapping, scoreOptions, cancellationToken);
                ScoringMetrics.InferenceSeconds.WithLabels(job.Job.ModelName, "job").Observe(watch.Elapsed.TotalSeconds);
                ScoringMetrics.BatchRows.WithLabels(job.Job.ModelName, "job").Observe(result.ScoredRows.Length);

                foreach (var failure in result.Failures)
                {
                    var row = start + failure.Row;
                    // A cell the reader could not parse reaches the model as null; report the reader's reason instead.
                    var (column, reason) = issuesByRow.TryGetValue(row, out var issue) ? (issue.Column, issue.Reason) : (failure.Column, failure.Reason);
                    failures.Add(new FailedRow(job.Job.Id, null, chunk.ChunkIndex, source.FirstRowNumber + row, KeyText(rows, job.Job.KeyColumn, row), column, reason));
                }

                // Every batch, in order: the chunk's sample is a uniform random choice over all its scored rows.
                driftSamples.RecordChunkBatch(job.Job.ModelName, job.Job.ModelVersion, (chunk.JobId, chunk.ChunkIndex), start, rows.RowCount, slice, job.Mapping, result);
                if (result.ScoredRows.Length == 0)
                {
                    continue;
                }

                var output = BuildOutputRows(job, slice, result);
                if (job.Table is not null)
                {
                    // One COPY in flight while the next batch is scored: inference and the write overlap.
                    await pendingCopy;
                    pendingCopy = CopyAsync(commit, job.Table, context, output, cancellationToken);
                }

                parts?.Add(output);
                scored += output.RowCount;
            }

            await pendingCopy;
        }
        catch
        {
            // Never dispose the connection under a running COPY: let it finish (or fail) before the rollback.
            await pendingCopy.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }

        if (parts is not null)
        {
            await WritePartAsync(job, chunk.ChunkIndex, parts, context, cancellationToken);
        }

        await commit.WriteFailedRowsAsync(failures, cancellationToken);
        var progress = await commit.CompleteAsync(scored, failures.Count, cancellationToken);
        ScoringMetrics.RowsScored.WithLabels(job.Job.ModelName, "job").Inc(scored);
        ScoringMetrics.RowsFailed.WithLabels(job.Job.ModelName, "job").Inc(failures.Count);
        ScoringMetrics.ChunksCompleted.Inc();
        await FinishIfDoneAsync(progress, cancellationToken);
        return ChunkOutcome.Committed;
    }

    private static async Task CopyAsync(ChunkCommit commit, ResultTable table, ResultRowContext context, ColumnBatch rows, CancellationToken cancellationToken)
    {
        // Yield first so the caller goes on to score the next batch while this COPY serialises rows.
        await Task.Yield();
        var watch = Stopwatch.StartNew();
        await commit.WriteResultsAsync(table, context, rows, cancellationToken);
        ScoringMetrics.CopySeconds.Observe(watch.Elapsed.TotalSeconds);
    }

    /// <summary>Drops the cached plan of a job (after it finished), so long-running workers do not accumulate them.</summary>
    public void Forget(Guid jobId) => _jobs.TryRemove(jobId, out _);

    private async Task FinishIfDoneAsync(JobProgress progress, CancellationToken cancellationToken)
    {
        if (progress.AllChunksFinished)
        {
            await finisher.TryFinishAsync(progress.JobId, cancellationToken);
            Forget(progress.JobId);
        }
    }

    private static string? KeyText(ColumnBatch rows, string keyColumn, int row) =>
        rows.Find(keyColumn)?.GetValue(row) is { } value ? Convert.ToString(value, CultureInfo.InvariantCulture) : null;

    private static ColumnBatch BuildOutputRows(JobPlanContext job, ColumnBatch slice, ScoreResult result)
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

    private static async Task WritePartAsync(
        JobPlanContext job, int chunkIndex, List<ColumnBatch> parts, ResultRowContext context, CancellationToken cancellationToken)
    {
        var directory = job.Job.OutputParquet!;
        await using var writer = await ParquetBatchWriter.CreateAsync(
            Path.Combine(directory, PartFileName(chunkIndex)), job.PartColumns, cancellationToken);
        if (parts.Count > 0)
        {
            var rows = ColumnBatch.Concat(parts);
            var n = rows.RowCount;
            var lineage = new List<BatchColumn>(rows.Columns)
            {
                new("job_id", ColumnKind.String, Enumerable.Repeat(job.Job.Id.ToString(), n).ToArray()),
                new("model_name", ColumnKind.String, Enumerable.Repeat(job.Job.ModelName, n).ToArray()),
                new("model_version", ColumnKind.Int32, Enumerable.Repeat(job.Job.ModelVersion, n).ToArray()),
                new("scored_at", ColumnKind.Timestamp, Enumerable.Repeat(context.ScoredAt.UtcDateTime, n).ToArray()),
            };
            await writer.WriteAsync(new ColumnBatch(lineage), cancellationToken);
        }

        await writer.CompleteAsync(cancellationToken);
    }

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

    private Task<JobPlanContext> GetContextAsync(ScoreChunk chunk, CancellationToken cancellationToken)
    {
        var task = _jobs.GetOrAdd(chunk.JobId, id => BuildContextAsync(id, chunk.Path, CancellationToken.None));
        if (task.IsFaulted || task.IsCanceled)
        {
            _jobs.TryRemove(chunk.JobId, out _);
        }

        return task.WaitAsync(cancellationToken);
    }

    private async Task<JobPlanContext> BuildContextAsync(Guid jobId, string samplePath, CancellationToken cancellationToken)
    {
        var job = await store.GetJobAsync(jobId, cancellationToken)
            ?? throw new InvalidOperationException($"Job {jobId} does not exist.");
        var version = await store.GetModelVersionAsync(job.ModelName, job.ModelVersion, cancellationToken)
            ?? throw new InvalidOperationException($"Job {jobId} uses model {job.ModelName} v{job.ModelVersion}, which is no longer registered.");
        var format = Enum.Parse<DatasetFormat>(job.InputFormat, ignoreCase: true);
        var columns = await Dataset.ReadColumnsAsync(format, samplePath, cancellationToken);
        InputMapping mapping;
        IReadOnlyList<(string Name, ColumnKind Kind)> outputs;
        using (var lease = models.Acquire(version))
        {
            mapping = lease.Model.MapInputs(
                columns.Select(c => (c.Name, c.Kind)).ToArray(),
                new InputMappingRequest { KeyColumn = job.KeyColumn, Passthrough = job.PassthroughColumns, Features = job.FeatureColumns });
            outputs = lease.Model.DescribeOutputs();
        }

        var carried = new List<string> { job.KeyColumn };
        carried.AddRange(job.PassthroughColumns.Where(p => p != job.KeyColumn));
        var read = carried.Concat(mapping.RequiredColumns).Distinct().Select(n => columns.First(c => c.Name == n)).ToArray();
        var sourceOf = columns.ToDictionary(c => c.Name);
        ResultTable? table = null;
        if (job.OutputTable is not null)
        {
            table = ResultTable.Define(
                job.OutputTable,
                new ResultColumn(job.KeyColumn, sourceOf[job.KeyColumn].Kind),
                job.PassthroughColumns.Select(p => new ResultColumn(p, sourceOf[p].Kind)).ToArray(),
                outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
        }

        var partColumns = PartColumns(carried.Select(n => sourceOf[n]), outputs);
        return new JobPlanContext(job, version, format, read, mapping, carried, table, partColumns);
    }

    private sealed record JobPlanContext(
        JobEntity Job,
        ModelVersionEntity ModelVersion,
        DatasetFormat Format,
        IReadOnlyList<SourceColumn> ReadColumns,
        InputMapping Mapping,
        IReadOnlyList<string> CarriedColumns,
        ResultTable? Table,
        IReadOnlyList<SourceColumn> PartColumns);
}
