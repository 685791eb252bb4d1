using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using BatchScoring.Application.Challengers;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Application;

/// <summary>
/// The data path of one chunk, as three stages joined by small bounded channels, so that reading, inference and the
/// writes of consecutive batches overlap while memory holds only a few batches, however many row groups the chunk has:
/// <list type="number">
/// <item><b>read</b> (<see cref="ReadStageAsync"/>, its own task): one Parquet row group, a CSV slice or a SQL key range at a time;</item>
/// <item><b>score</b> (<see cref="ScoreStageAsync"/>, the caller): converts and infers batch by batch (champion and challenger),
/// collects failed rows, drift samples and the comparison;</item>
/// <item><b>write</b> (<see cref="WriteStageAsync"/>, its own task): COPY into the results table(s) inside the chunk's transaction,
/// then the rows into the chunk's Parquet part(s), written row group by row group as they come.</item>
/// </list>
/// The first stage to fail stops the others; all three have ended before the caller commits or rolls back.
/// </summary>
public sealed partial class ChunkScorer
{
    /// <summary>Source batches read ahead of the one being scored (each at most a row group or a batch of CSV rows).</summary>
    private const int ReadAhead = 1;

    /// <summary>Scored batches waiting for the write stage, beside the one it is writing.</summary>
    private const int WriteBehind = 1;

    /// <summary>Rows gathered before a row group of a Parquet part is written (a part no longer is one row group per chunk).</summary>
    private const int PartRowGroupRows = 65_536;

    private async Task RunPipelineAsync(ChunkRun run, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reads = Channel.CreateBounded<ChunkSlice>(new BoundedChannelOptions(ReadAhead) { SingleReader = true, SingleWriter = true });
        var writes = Channel.CreateBounded<ScoredBatch>(new BoundedChannelOptions(WriteBehind) { SingleReader = true, SingleWriter = true });
        Exception? first = null;

        var reader = Task.Run(() => Stage(() => ReadStageAsync(run, reads.Writer, stop.Token), e => reads.Writer.TryComplete(e)), CancellationToken.None);
        var writer = Task.Run(() => Stage(() => WriteStageAsync(run, writes.Reader, stop.Token), null), CancellationToken.None);
        await Stage(() => ScoreStageAsync(run, reads.Reader, writes.Writer, stop.Token), e => writes.Writer.TryComplete(e));

        // Never leave with a stage running: the write stage uses the chunk's connection, which the caller disposes.
        await Task.WhenAll(reader, writer);
        if (first is not null)
        {
            ExceptionDispatchInfo.Capture(first).Throw();
        }

        cancellationToken.ThrowIfCancellationRequested();

        async Task Stage(Func<Task> body, Action<Exception?>? completeOutput)
        {
            try
            {
                await body();
                completeOutput?.Invoke(null);
            }
            catch (Exception ex)
            {
                // The root cause wins: the stages it stops fail with cancellation or with its own exception.
                if (ex is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    Interlocked.CompareExchange(ref first, ex, null);
                }

                completeOutput?.Invoke(ex);
                await stop.CancelAsync();
            }
        }
    }

    /// <summary>Stage 1, reading: the chunk's rows in order, one source batch at a time.</summary>
    private async Task ReadStageAsync(ChunkRun run, ChannelWriter<ChunkSlice> output, CancellationToken cancellationToken)
    {
        var job = run.Job;
        var spec = run.Spec;
        // An empty input is planned as one chunk of no rows, so it ends through the same commit and finisher as any job.
        if (spec.RowCount == 0)
        {
            return;
        }

        if (job.Plan.Sql is { } sql)
        {
            // The query and its key ranges come from the job's stored plan, never from the message.
            var queryStart = Stopwatch.GetTimestamp();
            SourceBatch source;
            using (ScoringTracing.Stage("chunk.read", job.Job.Id, spec.Index))
            {
                source = await sqlInputs.ReadChunkAsync(sql, spec, job.ReadColumns, cancellationToken);
            }

            run.Timings.AddSince(ChunkStage.Read, queryStart);
            if (source.Batch.RowCount != spec.RowCount)
            {
                logger.LogWarning(
                    "Job {JobId} chunk {Chunk}: the query gave {Rows} rows in the chunk's key range, {Planned} when the job was planned (the source changed)",
                    job.Job.Id, spec.Index, source.Batch.RowCount, spec.RowCount);
            }

            await output.WriteAsync(new ChunkSlice(source, 0, source.Batch.RowCount), cancellationToken);
            return;
        }

        foreach (var path in spec.ReadRanges().Select(r => r.Path).Distinct(StringComparer.Ordinal))
        {
            await job.EnsureFileMatchesAsync(path, p => CheckFileAsync(job, p));
        }

        var offset = 0;
        var rows = checked((int)spec.RowCount);
        var readStart = Stopwatch.GetTimestamp();
        var readSpan = ScoringTracing.Stage("chunk.read", job.Job.Id, spec.Index);
        try
        {
            await foreach (var source in Dataset.ReadSlicesAsync(job.Format, spec, job.ReadColumns, BatchRows(job), storageRoots, cancellationToken))
            {
                // Reading is the time to produce a slice, not the time waiting for the score stage to take it.
                run.Timings.AddSince(ChunkStage.Read, readStart);
                readSpan?.Dispose();
                await output.WriteAsync(new ChunkSlice(source, offset, rows), cancellationToken);
                offset += source.Batch.RowCount;
                readStart = Stopwatch.GetTimestamp();
                readSpan = ScoringTracing.Stage("chunk.read", job.Job.Id, spec.Index);
            }
        }
        finally
        {
            readSpan?.Dispose();
        }
    }

    /// <summary>Stage 2, converting and inferring: every source batch in slices of the job's batch size.</summary>
    private async Task ScoreStageAsync(ChunkRun run, ChannelReader<ChunkSlice> input, ChannelWriter<ScoredBatch> output, CancellationToken cancellationToken)
    {
        var job = run.Job;
        var challenger = job.Challenger;
        var batchRows = BatchRows(job);
        var scoreOptions = new ScoreOptions { AllowNonFinite = job.Job.AllowNonFinite };
        var tags = ScoringMetrics.ModelTags(job.Job.ModelName, "job");
        await foreach (var (source, chunkOffset, chunkRows) in input.ReadAllAsync(cancellationToken))
        {
            var rows = source.Batch;
            var issuesByRow = source.Issues.Count == 0 ? null : source.Issues.GroupBy(i => i.Row).ToDictionary(g => g.Key, g => g.First());
            for (var start = 0; start < rows.RowCount; start += batchRows)
            {
                var count = Math.Min(batchRows, rows.RowCount - start);
                var slice = start == 0 && count == rows.RowCount ? rows : rows.Slice(start, count);
                var watch = Stopwatch.StartNew();
                ScoreResult result;
                using (ScoringTracing.Stage("chunk.infer", job.Job.Id, run.Spec.Index))
                {
                    result = run.Lease.Model.Score(slice, job.Mapping, scoreOptions, cancellationToken);
                }

                ScoringMetrics.InferenceSeconds.Record(watch.Elapsed.TotalSeconds, tags);
                run.Timings.AddScore(watch.Elapsed, result);
                ScoringMetrics.BatchRows.Record(result.ScoredRows.Length, tags);

                ScoreResult? challengerResult = null;
                if (run.ChallengerLease is not null)
                {
                    var challengerStart = Stopwatch.GetTimestamp();
                    challengerResult = run.ChallengerLease.Model.Score(slice, challenger!.Mapping, scoreOptions, cancellationToken);
                    run.Timings.AddScore(Stopwatch.GetElapsedTime(challengerStart), challengerResult);
                    run.Comparison!.Add(result, challengerResult);
                }

                foreach (var failure in result.Failures)
                {
                    var row = start + failure.Row;
                    // A cell the reader could not parse reaches the model as null; report the reader's reason instead.
                    var (column, reason) = issuesByRow is not null && issuesByRow.TryGetValue(row, out var issue)
                        ? (issue.Column, issue.Reason)
                        : (failure.Column, failure.Reason);
                    run.Failures.Add(new FailedRow(job.Job.Id, null, run.Spec.Index, source.FirstRowNumber + row, KeyText(rows, job.Job.KeyColumn, row), column, reason) { KeyValue = rows.Find(job.Job.KeyColumn)?.GetValue(row) });
                }

                // Every batch, in order: the chunk's sample is a uniform random choice over all its scored rows.
                driftSamples.RecordChunkBatch(
                    job.Job.ModelName, job.Job.ModelVersion, (job.Job.Id, run.Spec.Index), chunkOffset + start, chunkRows, slice, job.Mapping, result);
                var convertStart = Stopwatch.GetTimestamp();
                var scored = result.ScoredRows.Length == 0 ? null : BuildOutputRows(job, slice, result);
                var challengerScored = challengerResult is { ScoredRows.Length: > 0 } ? BuildOutputRows(job, slice, challengerResult) : null;
                run.Timings.AddSince(ChunkStage.Convert, convertStart);
                run.ScoredRows += scored?.RowCount ?? 0;
                if (scored is not null || challengerScored is not null)
                {
                    // Waits while the write stage is a batch behind: backpressure instead of buffering.
                    await output.WriteAsync(new ScoredBatch(scored, challengerScored), cancellationToken);
                }
            }
        }
    }

    /// <summary>Stage 3, writing: COPY into the results table(s), then the chunk's Parquet part(s), renamed into place at the end.</summary>
    private static async Task WriteStageAsync(ChunkRun run, ChannelReader<ScoredBatch> input, CancellationToken cancellationToken)
    {
        var job = run.Job;
        var challenger = job.Challenger;
        await using var part = job.Job.OutputParquet is null ? null
            : await PartWriter.CreateAsync(job.Job.OutputParquet, job.PartColumns, run.Spec.Index, run.Context, job.Job.ModelSha256, cancellationToken);
        await using var challengerPart = challenger?.OutputParquet is null ? null
            : await PartWriter.CreateAsync(challenger.OutputParquet, challenger.PartColumns, run.Spec.Index, run.ChallengerContext!, challenger.Plan.Sha256, cancellationToken);
        await foreach (var batch in input.ReadAllAsync(cancellationToken))
        {
            var watch = Stopwatch.StartNew();
            var copySpan = job.Table is null && challenger?.Table is null ? null : ScoringTracing.Stage("chunk.copy", job.Job.Id, run.Spec.Index);
            // One after the other: both COPYs share the chunk's connection and transaction.
            if (job.Table is not null && batch.Scored is not null)
            {
                await run.Commit.WriteResultsAsync(job.Table, run.Context, batch.Scored, cancellationToken);
            }

            if (challenger?.Table is not null && batch.ChallengerScored is not null)
            {
                await run.Commit.WriteResultsAsync(challenger.Table, run.ChallengerContext!, batch.ChallengerScored, cancellationToken);
            }

            if (job.Table is not null || challenger?.Table is not null)
            {
                ScoringMetrics.CopySeconds.Record(watch.Elapsed.TotalSeconds);
                run.Timings.Add(ChunkStage.Copy, watch.Elapsed);
            }

            copySpan?.Dispose();
            var parquetStart = Stopwatch.GetTimestamp();
            using var parquetSpan = part is null && challengerPart is null ? null : ScoringTracing.Stage("chunk.parquet", job.Job.Id, run.Spec.Index);
            if (part is not null && batch.Scored is not null)
            {
                await part.AddAsync(batch.Scored, cancellationToken);
            }

            if (challengerPart is not null && batch.ChallengerScored is not null)
            {
                await challengerPart.AddAsync(batch.ChallengerScored, cancellationToken);
            }

            run.Timings.AddSince(ChunkStage.Parquet, parquetStart);
        }

        var completeStart = Stopwatch.GetTimestamp();
        using var completeSpan = part is null && challengerPart is null ? null : ScoringTracing.Stage("chunk.parquet", job.Job.Id, run.Spec.Index);
        if (part is not null)
        {
            await part.CompleteAsync(cancellationToken);
        }

        if (challengerPart is not null)
        {
            await challengerPart.CompleteAsync(cancellationToken);
        }

        run.Timings.AddSince(ChunkStage.Parquet, completeStart);
    }

    private static int BatchRows(JobPlan job) => Math.Max(1, job.Job.BatchSize);

    /// <summary>Everything one chunk attempt works with, and what its stages gather for the commit.</summary>
    private sealed class ChunkRun(ChunkCommit commit, JobPlan job, ChunkSpec spec, ModelLease lease, ResultRowContext context)
    {
        public ChunkCommit Commit { get; } = commit;

        public JobPlan Job { get; } = job;

        public ChunkSpec Spec { get; } = spec;

        public ModelLease Lease { get; } = lease;

        public ResultRowContext Context { get; } = context;

        /// <summary>Seconds per stage; thread-safe, since the three stages add to it at once.</summary>
        public required ChunkStageTimings Timings { get; init; }

        public ModelLease? ChallengerLease { get; init; }

        public ResultRowContext? ChallengerContext { get; init; }

        public ChunkComparison? Comparison { get; init; }

        /// <summary>Written by the score stage only; read once the pipeline has ended.</summary>
        public List<FailedRow> Failures { get; } = [];

        public long ScoredRows { get; set; }
    }

    /// <summary>A source batch, where it starts within the chunk, and how many rows the chunk has (for the drift sample).</summary>
    private sealed record ChunkSlice(SourceBatch Source, int ChunkOffset, int ChunkRows);

    /// <summary>Output rows of one inference batch: the champion's, and the challenger's (null where none scored).</summary>
    private sealed record ScoredBatch(ColumnBatch? Scored, ColumnBatch? ChallengerScored);

    /// <summary>
    /// The chunk's Parquet part: rows gathered into row groups of about <see cref="PartRowGroupRows"/> with the lineage
    /// columns, written as they come under a temporary name and renamed into place by <see cref="CompleteAsync"/>.
    /// </summary>
    private sealed class PartWriter : IAsyncDisposable
    {
        private readonly ParquetBatchWriter _writer;
        private readonly ResultRowContext _context;
        private readonly List<ColumnBatch> _pending = [];
        private int _pendingRows;

        private PartWriter(ParquetBatchWriter writer, ResultRowContext context)
        {
            _writer = writer;
            _context = context;
        }

        public static async Task<PartWriter> CreateAsync(
            string folder, IReadOnlyList<SourceColumn> partColumns, int chunkIndex, ResultRowContext context, string modelSha256, CancellationToken cancellationToken)
        {
            var path = Path.Combine(folder, PartFileName(chunkIndex));
            // This worker holds the chunk's lock, so any temporary file of this part is a leftover of a killed attempt.
            ParquetBatchWriter.DeleteLeftovers(path);
            return new PartWriter(await ParquetBatchWriter.CreateAsync(path, partColumns, cancellationToken, PartMetadata(context, modelSha256, chunkIndex)), context);
        }

        public async Task AddAsync(ColumnBatch rows, CancellationToken cancellationToken)
        {
            _pending.Add(rows);
            _pendingRows += rows.RowCount;
            if (_pendingRows >= PartRowGroupRows)
            {
                await FlushAsync(cancellationToken);
            }
        }

        public async Task CompleteAsync(CancellationToken cancellationToken)
        {
            await FlushAsync(cancellationToken);
            await _writer.CompleteAsync(cancellationToken);
        }

        public ValueTask DisposeAsync() => _writer.DisposeAsync();

        private async Task FlushAsync(CancellationToken cancellationToken)
        {
            if (_pending.Count == 0)
            {
                return;
            }

            var rows = _pending.Count == 1 ? _pending[0] : ColumnBatch.Concat(_pending);
            _pending.Clear();
            _pendingRows = 0;
            var n = rows.RowCount;
            var lineage = new List<BatchColumn>(rows.Columns)
            {
                new("job_id", ColumnKind.String, Enumerable.Repeat(_context.JobId!.Value.ToString(), n).ToArray()),
                new("model_name", ColumnKind.String, Enumerable.Repeat(_context.ModelName, n).ToArray()),
                new("model_version", ColumnKind.Int32, Enumerable.Repeat(_context.ModelVersion, n).ToArray()),
                new("scored_at", ColumnKind.Timestamp, Enumerable.Repeat(_context.ScoredAt.UtcDateTime, n).ToArray()),
            };
            await _writer.WriteAsync(new ColumnBatch(lineage), cancellationToken);
        }
    }
}
