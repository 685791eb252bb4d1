using BatchScoring.Scoring.Data;
using Npgsql;

namespace BatchScoring.Data;

/// <summary>
/// Exactly-once commit of one chunk's output. <see cref="BeginAsync"/> locks the chunk row
/// (<c>SELECT … FOR UPDATE</c>) in a transaction; results and failed rows are COPYed in that same
/// transaction; <see cref="CompleteAsync"/> marks the chunk succeeded, adds its counts to the job and
/// commits. A worker that dies (or disposes without completing) leaves nothing behind; a redelivered
/// chunk waits on the lock and then finds the chunk succeeded, so <see cref="BeginAsync"/> returns null.
/// </summary>
public sealed class ChunkCommit : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private NpgsqlTransaction? _transaction;
    private bool _completed;

    private ChunkCommit(NpgsqlConnection connection, NpgsqlTransaction transaction, ChunkEntity chunk, JobState jobState, int jobRetries)
    {
        _connection = connection;
        _transaction = transaction;
        Chunk = chunk;
        JobState = jobState;
        JobRetries = jobRetries;
    }

    public Guid JobId => Chunk.JobId;

    public int ChunkIndex => Chunk.ChunkIndex;

    /// <summary>The chunk as locked (state pending; <see cref="ChunkEntity.Attempts"/> counts this attempt).</summary>
    public ChunkEntity Chunk { get; }

    /// <summary>State of the job when the chunk was locked (queued or running).</summary>
    public JobState JobState { get; }

    /// <summary>How many times the job was retried (what workers cached about the job before a retry is stale).</summary>
    public int JobRetries { get; }

    /// <summary>The connection holding the transaction, for extra statements in the same unit of work.</summary>
    public NpgsqlConnection Connection => _connection;

    /// <summary>
    /// Locks the chunk for this worker. Returns null when there is nothing to do: the chunk already
    /// succeeded or failed, or the job is cancelled or finished. Throws <see cref="InvalidOperationException"/>
    /// when the chunk does not exist. The attempt counters (<c>attempts</c>, <c>open_attempts</c>), worker name and
    /// start time are recorded in their own (committed) statement, so attempts survive a crashed worker: an attempt
    /// that records no outcome stays counted in <see cref="ChunkEntity.OpenAttempts"/> (poison-message detection).
    /// </summary>
    public static async Task<ChunkCommit?> BeginAsync(NpgsqlDataSource dataSource, Guid jobId, int chunkIndex, string workerName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(workerName);
        var connection = await dataSource.OpenConnectionAsync(ct);
        NpgsqlTransaction? transaction = null;
        try
        {
            // Waits for a concurrent attempt's lock; after it commits the chunk is no longer pending.
            int touched;
            await using (var attempt = new NpgsqlCommand(
                """
                UPDATE scoring.chunks AS c
                SET attempts = c.attempts + 1, open_attempts = c.open_attempts + 1, worker = $3, started_at = now()
                FROM scoring.jobs AS j
                WHERE c.job_id = $1 AND c.chunk_index = $2 AND c.state = 'pending'
                  AND j.id = c.job_id AND j.state IN ('queued', 'running')
                """,
                connection))
            {
                attempt.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
                attempt.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
                attempt.Parameters.Add(new NpgsqlParameter<string> { TypedValue = workerName });
                touched = await attempt.ExecuteNonQueryAsync(ct);
            }

            if (touched == 0)
            {
                await EnsureChunkExistsAsync(connection, jobId, chunkIndex, ct);
                await FailIfJobFailedAsync(connection, null, jobId, chunkIndex, ct);
                await connection.DisposeAsync();
                return null;
            }

            transaction = await connection.BeginTransactionAsync(ct);
            ChunkEntity? chunk = null;
            var jobState = JobState.Queued;
            var jobRetries = 0;
            await using (var select = LockChunk(
                """
                c.state, j.state, c.source_path, c.row_group, c.row_start, c.row_count, c.attempts,
                c.scored_rows, c.failed_rows, c.worker, c.error, c.started_at, c.finished_at,
                c.open_attempts, c.failures, c.first_failed_at, c.last_error, j.retries
                """,
                connection, transaction, jobId, chunkIndex))
            {
                await using var reader = await select.ExecuteReaderAsync(ct);
                if (await reader.ReadAsync(ct))
                {
                    jobState = StateText.ParseJobState(reader.GetString(1));
                    chunk = new ChunkEntity
                    {
                        JobId = jobId,
                        ChunkIndex = chunkIndex,
                        State = StateText.ParseChunkState(reader.GetString(0)),
                        SourcePath = reader.GetString(2),
                        RowGroup = reader.IsDBNull(3) ? null : reader.GetInt32(3),
                        RowStart = reader.GetInt64(4),
                        RowCount = reader.GetInt64(5),
                        Attempts = reader.GetInt32(6),
                        ScoredRows = reader.GetInt64(7),
                        FailedRows = reader.GetInt64(8),
                        Worker = reader.IsDBNull(9) ? null : reader.GetString(9),
                        Error = reader.IsDBNull(10) ? null : reader.GetString(10),
                        StartedAt = reader.IsDBNull(11) ? null : reader.GetFieldValue<DateTimeOffset>(11),
                        FinishedAt = reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12),
                        OpenAttempts = reader.GetInt32(13),
                        Failures = reader.GetInt32(14),
                        FirstFailedAt = reader.IsDBNull(15) ? null : reader.GetFieldValue<DateTimeOffset>(15),
                        LastError = reader.IsDBNull(16) ? null : reader.GetString(16),
                    };
                    jobRetries = reader.GetInt32(17);
                }
            }

            if (chunk is { State: ChunkState.Pending } && jobState == JobState.Failed)
            {
                // The job failed between this attempt's start and its lock: failing a job skips the chunks locked at
                // that moment (this attempt's own statement among them), so it is this attempt's to end.
                await FailIfJobFailedAsync(connection, transaction, jobId, chunkIndex, ct);
                await transaction.CommitAsync(ct);
                await transaction.DisposeAsync();
                await connection.DisposeAsync();
                return null;
            }

            if (chunk is null || chunk.State != ChunkState.Pending || jobState is not (JobState.Queued or JobState.Running))
            {
                await transaction.RollbackAsync(ct);
                await transaction.DisposeAsync();
                await connection.DisposeAsync();
                return null;
            }

            return new ChunkCommit(connection, transaction, chunk, jobState, jobRetries);
        }
        catch
        {
            if (transaction is not null)
            {
                await transaction.DisposeAsync();
            }

            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>COPYs result rows in the chunk's transaction; may be called many times per chunk.</summary>
    public Task<ulong> WriteResultsAsync(ResultTable table, ResultRowContext context, ColumnBatch rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        EnsureOpen();
        return table.CopyAsync(_connection, context, rows, ct);
    }

    /// <summary>COPYs failed (poison) rows in the chunk's transaction.</summary>
    public Task<ulong> WriteFailedRowsAsync(IReadOnlyList<FailedRow> rows, CancellationToken ct)
    {
        EnsureOpen();
        return FailedRowWriter.WriteAsync(_connection, rows, ct);
    }

    /// <summary>Seconds this attempt spent per stage; stored on the chunk row by <see cref="CompleteAsync"/> when set.</summary>
    public StageSeconds? Stages { get; set; }

    /// <summary>
    /// Marks the chunk succeeded with its counts, adds them to the job (chunks_done + 1) and commits
    /// everything written through this instance. Returns the job's counters after this chunk.
    /// </summary>
    public async Task<JobProgress> CompleteAsync(long scoredRows, long failedRows, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(scoredRows);
        ArgumentOutOfRangeException.ThrowIfNegative(failedRows);
        EnsureOpen();

        await using var batch = new NpgsqlBatch(_connection, _transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.chunks
                    SET state = 'succeeded', scored_rows = $3, failed_rows = $4, error = NULL, finished_at = now(),
                        open_attempts = 0, next_attempt_at = NULL
                    WHERE job_id = $1 AND chunk_index = $2
                    """),
                new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.jobs
                    SET scored_rows = scored_rows + $2, failed_rows = failed_rows + $3,
                        chunks_done = chunks_done + 1, updated_at = now()
                    WHERE id = $1
                    RETURNING id, state, total_rows, scored_rows, failed_rows, chunks_total, chunks_done, chunks_failed
                    """),
            },
        };
        var chunkCommand = batch.BatchCommands[0];
        chunkCommand.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = JobId });
        chunkCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = ChunkIndex });
        chunkCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = scoredRows });
        chunkCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = failedRows });
        var jobCommand = batch.BatchCommands[1];
        jobCommand.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = JobId });
        jobCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = scoredRows });
        jobCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = failedRows });
        if (Stages is { } stages)
        {
            batch.BatchCommands.Insert(1, stages.UpdateChunkCommand(JobId, ChunkIndex));
        }

        JobProgress progress;
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"Job {JobId} disappeared while chunk {ChunkIndex} was being committed.");
            }

            progress = ReadProgress(reader);
        }

        await _transaction!.CommitAsync(ct);
        _completed = true;
        Chunk.State = ChunkState.Succeeded;
        Chunk.ScoredRows = scoredRows;
        Chunk.FailedRows = failedRows;
        await ReleaseAsync();
        return progress;
    }

    /// <summary>
    /// Marks a pending chunk failed (e.g. its whole input is unreadable) in its own transaction and
    /// increments the job's chunks_failed. Returns null (and changes nothing) when the chunk is not
    /// pending or the job is not queued, running or failed (a chunk that was in flight when its job
    /// failed still records its own outcome; a cancelled job keeps its pending chunks for a retry).
    /// </summary>
    public static async Task<JobProgress?> FailChunkAsync(NpgsqlDataSource dataSource, Guid jobId, int chunkIndex, string workerName, string error, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(workerName);
        ArgumentNullException.ThrowIfNull(error);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);

        await using (var select = LockChunk("c.state, j.state", connection, transaction, jobId, chunkIndex))
        {
            await using var reader = await select.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"Chunk {chunkIndex} of job {jobId} does not exist.");
            }

            if (reader.GetString(0) != "pending" || reader.GetString(1) is not ("queued" or "running" or "failed"))
            {
                return null;
            }
        }

        await using var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.chunks
                    SET state = 'failed', worker = $3, error = $4, last_error = $4, scored_rows = 0, failed_rows = 0, finished_at = now(),
                        open_attempts = 0, next_attempt_at = NULL
                    WHERE job_id = $1 AND chunk_index = $2
                    """),
                new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.jobs
                    SET chunks_failed = chunks_failed + 1, updated_at = now()
                    WHERE id = $1
                    RETURNING id, state, total_rows, scored_rows, failed_rows, chunks_total, chunks_done, chunks_failed
                    """),
            },
        };
        var chunkCommand = batch.BatchCommands[0];
        chunkCommand.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        chunkCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        chunkCommand.Parameters.Add(new NpgsqlParameter<string> { TypedValue = workerName });
        chunkCommand.Parameters.Add(new NpgsqlParameter<string> { TypedValue = error });
        batch.BatchCommands[1].Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });

        JobProgress progress;
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            progress = ReadProgress(reader);
        }

        await transaction.CommitAsync(ct);
        return progress;
    }

    /// <summary>
    /// Records a transient failure of a pending chunk (after its in-place retries): counts it, keeps the first failure's time and the last reason, and sets when the reconciler re-sends the chunk:
    /// after <paramref name="backoff"/>, doubled for every earlier failure, at most <paramref name="maxBackoff"/>.
    /// Returns the chunk's failure count, first failure time and next attempt, or null when the chunk is not pending.
    /// </summary>
    public static async Task<(int Failures, DateTimeOffset FirstFailedAt, DateTimeOffset NextAttemptAt)?> RecordTransientFailureAsync(
        NpgsqlDataSource dataSource, Guid jobId, int chunkIndex, string error, TimeSpan backoff, TimeSpan maxBackoff, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(error);
        await using var command = dataSource.CreateCommand(
            """
            UPDATE scoring.chunks
            SET failures = failures + 1,
                first_failed_at = coalesce(first_failed_at, now()), last_error = $3,
                next_attempt_at = now() + least($5, $4 * power(2, least(failures, 30)))
            WHERE job_id = $1 AND chunk_index = $2 AND state = 'pending'
            RETURNING failures, first_failed_at, next_attempt_at
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = error });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = backoff });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = maxBackoff });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? (reader.GetInt32(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2))
            : null;
    }

    /// <summary>Closes an attempt that ended with a handled error or was interrupted on purpose (the worker is stopping): it is not a crash.</summary>
    public static async Task ReleaseAttemptAsync(NpgsqlDataSource dataSource, Guid jobId, int chunkIndex, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var command = dataSource.CreateCommand(
            """
            UPDATE scoring.chunks SET open_attempts = greatest(open_attempts - 1, 0)
            WHERE job_id = $1 AND chunk_index = $2 AND state = 'pending'
            """);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Rolls back unless <see cref="CompleteAsync"/> committed, and returns the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync();
    }

    /// <summary>Selects <paramref name="columns"/> of a chunk (alias <c>c</c>) and its job (<c>j</c>), locking the chunk row.</summary>
    private static NpgsqlCommand LockChunk(string columns, NpgsqlConnection connection, NpgsqlTransaction transaction, Guid jobId, int chunkIndex)
    {
        var select = new NpgsqlCommand(
            $"""
            SELECT {columns}
            FROM scoring.chunks AS c
            JOIN scoring.jobs AS j ON j.id = c.job_id
            WHERE c.job_id = $1 AND c.chunk_index = $2
            FOR UPDATE OF c
            """,
            connection,
            transaction);
        select.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        return select;
    }

    internal static JobProgress ReadProgress(NpgsqlDataReader reader) => new(
        reader.GetGuid(0),
        StateText.ParseJobState(reader.GetString(1)),
        reader.GetInt64(2),
        reader.GetInt64(3),
        reader.GetInt64(4),
        reader.GetInt32(5),
        reader.GetInt32(6),
        reader.GetInt32(7));

    /// <summary>
    /// Fails the chunk, when still pending, if its job failed, as failing the job does for the pending chunks no worker
    /// held at that moment (<c>JobStore.FailJobAsync</c>): a chunk skipped then because a worker held it, and that
    /// worker's attempt then ended without an outcome, would otherwise stay pending for good (the reconciler only
    /// re-sends chunks of running jobs).
    /// </summary>
    private static async Task FailIfJobFailedAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid jobId, int chunkIndex, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            """
            WITH job AS (
                SELECT id, error FROM scoring.jobs WHERE id = $1 AND state = 'failed'
            ), target AS (
                -- A worker holding the chunk records its own outcome; this one does not wait for it.
                SELECT c.chunk_index FROM scoring.chunks AS c JOIN job ON c.job_id = job.id
                WHERE c.chunk_index = $2 AND c.state = 'pending'
                FOR UPDATE OF c SKIP LOCKED
            ), failed AS (
                UPDATE scoring.chunks AS c
                SET state = 'failed', finished_at = now(), next_attempt_at = NULL, open_attempts = 0,
                    error = 'Not scored: the job failed (' || CASE WHEN length(coalesce(job.error, '')) <= 500 THEN coalesce(job.error, '')
                                                                  ELSE left(job.error, 500) || '…' END || ')'
                FROM job, target WHERE c.job_id = job.id AND c.chunk_index = target.chunk_index
                RETURNING 1
            )
            UPDATE scoring.jobs AS j SET chunks_failed = j.chunks_failed + 1, updated_at = now()
            WHERE j.id = $1 AND EXISTS (SELECT 1 FROM failed)
            """,
            connection,
            transaction);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task EnsureChunkExistsAsync(NpgsqlConnection connection, Guid jobId, int chunkIndex, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT EXISTS (SELECT 1 FROM scoring.chunks WHERE job_id = $1 AND chunk_index = $2)
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkIndex });
        if (!(bool)(await command.ExecuteScalarAsync(ct))!)
        {
            throw new InvalidOperationException($"Chunk {chunkIndex} of job {jobId} does not exist.");
        }
    }

    private void EnsureOpen()
    {
        if (_completed)
        {
            throw new InvalidOperationException($"Chunk {ChunkIndex} of job {JobId} is already committed.");
        }

        ObjectDisposedException.ThrowIf(_transaction is null, this);
    }

    private async ValueTask ReleaseAsync()
    {
        if (_transaction is { } transaction)
        {
            _transaction = null;
            await transaction.DisposeAsync(); // rolls back when not committed
            await _connection.DisposeAsync();
        }
    }
}
