using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>Result of <see cref="JobStore.CreateJobAsync"/>: the job, and whether this call created it.</summary>
public sealed record JobCreateResult(JobEntity Job, bool Created);

/// <summary>What <see cref="JobStore.PrepareRetryAsync"/> re-runs.</summary>
public enum RetryMode
{
    /// <summary>A failed or cancelled job: its failed and pending chunks.</summary>
    FailedChunks,

    /// <summary>A failed or cancelled job, from scratch: its earlier results are deleted first.</summary>
    Everything,

    /// <summary>A queued or running job: its pending chunks are sent again.</summary>
    Resume,
}

/// <summary>Filter for <see cref="JobStore.ListJobsAsync"/> (newest first).</summary>
public sealed record JobListFilter(JobState? State = null, string? ModelName = null, int Limit = 50, int Offset = 0, string? Tenant = null);

/// <summary>
/// Jobs, their chunks and failed rows (the model registry is <see cref="ModelStore"/>, drift <see cref="DriftStore"/>).
/// Reads go through EF Core (<see cref="ScoringDbContext"/>); state transitions are single SQL statements
/// (<c>UPDATE … WHERE state = … RETURNING</c>) so that concurrent callers cannot both win.
/// </summary>
public sealed class JobStore(NpgsqlDataSource dataSource)
{
    private readonly NpgsqlDataSource _dataSource = dataSource;
    private readonly DbContextOptions<ScoringDbContext> _options = ScoringDbContext.CreateOptions(dataSource);

    private ScoringDbContext CreateContext() => new(_options);

    /// <summary>
    /// Inserts the job and its chunks in one transaction. <c>chunks_total</c> is set to the chunk count,
    /// <c>total_rows</c> to the sum of chunk rows when the job does not set it, and every chunk to pending.
    /// When a job of the same tenant with the same idempotency key exists, nothing is written and that job is returned
    /// with <see cref="JobCreateResult.Created"/> false. A job has at least one chunk (an empty input is one chunk of no
    /// rows), so that every job ends through a chunk's commit and the job finisher.
    /// </summary>
    public async Task<JobCreateResult> CreateJobAsync(JobEntity job, IReadOnlyList<ChunkEntity> chunks, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(chunks);
        if (chunks.Count == 0)
        {
            throw new ArgumentException("A job needs at least one chunk; plan an empty input as one chunk of no rows.", nameof(chunks));
        }

        if (job.Id == Guid.Empty)
        {
            job.Id = Guid.CreateVersion7();
        }

        var totalRows = job.TotalRows != 0 ? job.TotalRows : chunks.Sum(c => c.RowCount);
        await using (var connection = await _dataSource.OpenConnectionAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            await using var insert = new NpgsqlCommand(
                """
                INSERT INTO scoring.jobs (
                    id, idempotency_key, state, model_name, model_version, model_sha256, input_uri, input_format,
                    key_column, passthrough_columns, feature_columns, output_table, output_parquet, batch_size,
                    chunk_size, allow_non_finite, error_threshold_rows, error_threshold_percent, total_rows, chunks_total,
                    tenant, request_sha256, plan)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
                ON CONFLICT (tenant, idempotency_key) DO NOTHING
                """,
                connection,
                tx);
            var p = insert.Parameters;
            p.Add(DbParameter.Of(job.Id, NpgsqlDbType.Uuid));
            p.Add(DbParameter.Of(job.IdempotencyKey, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(StateText.ToDb(job.State), NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.ModelName, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.ModelVersion, NpgsqlDbType.Integer));
            p.Add(DbParameter.Of(job.ModelSha256, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.InputUri, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.InputFormat, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.KeyColumn, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.PassthroughColumns ?? [], NpgsqlDbType.Array | NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.FeatureColumns, NpgsqlDbType.Array | NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.OutputTable, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.OutputParquet, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.BatchSize, NpgsqlDbType.Integer));
            p.Add(DbParameter.Of(job.ChunkSize, NpgsqlDbType.Integer));
            p.Add(DbParameter.Of(job.AllowNonFinite, NpgsqlDbType.Boolean));
            p.Add(DbParameter.Of(job.ErrorThresholdRows, NpgsqlDbType.Bigint));
            p.Add(DbParameter.Of(job.ErrorThresholdPercent, NpgsqlDbType.Double));
            p.Add(DbParameter.Of(totalRows, NpgsqlDbType.Bigint));
            p.Add(DbParameter.Of(chunks.Count, NpgsqlDbType.Integer));
            p.Add(DbParameter.Of(job.Tenant, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.RequestSha256, NpgsqlDbType.Text));
            p.Add(DbParameter.Of(job.Plan, NpgsqlDbType.Jsonb));

            // Zero rows: the idempotency key exists (a concurrent insert of the same key waits for the
            // other transaction and then lands here too).
            if (await insert.ExecuteNonQueryAsync(ct) == 0)
            {
                await tx.RollbackAsync(ct);
                await using var db = CreateContext();
                var existing = await db.Jobs.AsNoTracking()
                    .SingleAsync(j => j.Tenant == job.Tenant && j.IdempotencyKey == job.IdempotencyKey, ct);
                return new JobCreateResult(existing, false);
            }

            await using (var importer = await connection.BeginBinaryImportAsync(
                """
                COPY scoring.chunks (job_id, chunk_index, source_path, row_group, row_start, row_count, byte_offset, ranges) FROM STDIN (FORMAT BINARY)
                """,
                ct))
            {
                foreach (var chunk in chunks)
                {
                    await importer.StartRowAsync(ct);
                    await importer.WriteAsync(job.Id, NpgsqlDbType.Uuid, ct);
                    await importer.WriteAsync(chunk.ChunkIndex, NpgsqlDbType.Integer, ct);
                    await importer.WriteAsync(chunk.SourcePath, NpgsqlDbType.Text, ct);
                    if (chunk.RowGroup is { } rowGroup)
                    {
                        await importer.WriteAsync(rowGroup, NpgsqlDbType.Integer, ct);
                    }
                    else
                    {
                        await importer.WriteNullAsync(ct);
                    }

                    await importer.WriteAsync(chunk.RowStart, NpgsqlDbType.Bigint, ct);
                    await importer.WriteAsync(chunk.RowCount, NpgsqlDbType.Bigint, ct);
                    await importer.WriteAsync(chunk.ByteOffset, NpgsqlDbType.Bigint, ct);
                    if (chunk.Ranges is { } ranges)
                    {
                        await importer.WriteAsync(ranges, NpgsqlDbType.Jsonb, ct);
                    }
                    else
                    {
                        await importer.WriteNullAsync(ct);
                    }
                }

                await importer.CompleteAsync(ct);
            }

            await tx.CommitAsync(ct);
        }

        var created = await GetJobAsync(job.Id, ct)
            ?? throw new InvalidOperationException($"Job {job.Id} vanished right after it was created.");
        return new JobCreateResult(created, true);
    }

    public async Task<JobEntity?> GetJobAsync(Guid id, CancellationToken ct)
    {
        await using var db = CreateContext();
        return await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == id, ct);
    }

    public Task<JobEntity?> GetJobByIdempotencyKeyAsync(string idempotencyKey, CancellationToken ct) =>
        GetJobByIdempotencyKeyAsync(idempotencyKey, Tenants.Default, ct);

    public async Task<JobEntity?> GetJobByIdempotencyKeyAsync(string idempotencyKey, string tenant, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(idempotencyKey);
        ArgumentNullException.ThrowIfNull(tenant);
        await using var db = CreateContext();
        return await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Tenant == tenant && j.IdempotencyKey == idempotencyKey, ct);
    }

    /// <summary>Jobs matching the filter (a null tenant: every tenant's), newest first. Limit is clamped to 1..1000.</summary>
    public async Task<IReadOnlyList<JobEntity>> ListJobsAsync(JobListFilter filter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(filter);
        await using var db = CreateContext();
        IQueryable<JobEntity> query = db.Jobs.AsNoTracking();
        if (filter.State is { } state)
        {
            query = query.Where(j => j.State == state);
        }

        if (filter.ModelName is { } modelName)
        {
            query = query.Where(j => j.ModelName == modelName);
        }

        if (filter.Tenant is { } tenant)
        {
            query = query.Where(j => j.Tenant == tenant);
        }

        return await query
            .OrderByDescending(j => j.CreatedAt)
            .ThenByDescending(j => j.Id)
            .Skip(Math.Max(0, filter.Offset))
            .Take(Math.Clamp(filter.Limit, 1, 1000))
            .ToListAsync(ct);
    }

    /// <summary>queued → running (sets started_at). False when the job is not queued.</summary>
    public async Task<bool> MarkRunningAsync(Guid id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE scoring.jobs
            SET state = 'running', started_at = COALESCE(started_at, now()), updated_at = now()
            WHERE id = $1 AND state = 'queued'
            """);
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>
    /// When the job is running and every chunk is done or failed, finishes it in one statement:
    /// failed if any chunk failed, or failed_rows &gt; error_threshold_rows, or
    /// failed_rows / total_rows × 100 &gt; error_threshold_percent (null thresholds do not limit);
    /// succeeded otherwise. Returns the final state for the one caller that finished it, else null.
    /// </summary>
    public async Task<JobState?> TryFinishJobAsync(Guid id, CancellationToken ct)
    {
        // The failure reason is computed from the row being updated (re-read under its lock), not from
        // an earlier snapshot, so a concurrent chunk commit cannot be missed.
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE scoring.jobs AS j
            SET state = CASE WHEN x.reason IS NULL THEN 'succeeded' ELSE 'failed' END,
                error = x.reason,
                finished_at = now(),
                updated_at = now()
            FROM (
                SELECT id, CASE
                    WHEN chunks_failed > 0 THEN
                        format('%s of %s chunks failed%s', chunks_failed, chunks_total, (
                            SELECT format('; chunk %s: %s', c.chunk_index, c.error) FROM scoring.chunks AS c
                            WHERE c.job_id = $1 AND c.state = 'failed' AND c.error IS NOT NULL
                            ORDER BY c.chunk_index LIMIT 1))
                    WHEN error_threshold_rows IS NOT NULL AND failed_rows > error_threshold_rows THEN
                        format('%s failed rows exceed the error threshold of %s rows', failed_rows, error_threshold_rows)
                    WHEN error_threshold_percent IS NOT NULL AND failed_rows > 0
                         AND failed_rows * 100.0 / GREATEST(CASE WHEN total_rows > 0 THEN total_rows ELSE scored_rows + failed_rows END, 1)
                             > error_threshold_percent THEN
                        format('%s failed rows (%s%%) exceed the error threshold of %s%%', failed_rows,
                               round((failed_rows * 100.0 / GREATEST(CASE WHEN total_rows > 0 THEN total_rows ELSE scored_rows + failed_rows END, 1))::numeric, 2),
                               error_threshold_percent)
                    END AS reason
                FROM scoring.jobs WHERE id = $1 FOR UPDATE
            ) AS x
            WHERE j.id = x.id AND j.state = 'running' AND j.chunks_done + j.chunks_failed >= j.chunks_total
            RETURNING j.state
            """);
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        var state = await command.ExecuteScalarAsync(ct);
        return state is string text ? StateText.ParseJobState(text) : null;
    }

    /// <summary>queued/running → cancelled; chunks keep their state. False when the job was not active.</summary>
    public async Task<bool> CancelJobAsync(Guid id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE scoring.jobs
            SET state = 'cancelled', error = 'cancelled', finished_at = now(), updated_at = now()
            WHERE id = $1 AND state IN ('queued', 'running')
            """);
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>
    /// Makes a job runnable again, in one transaction, and returns its pending chunks (to send), or null when the
    /// job does not exist or is not in a state <paramref name="mode"/> applies to:
    /// <list type="bullet">
    /// <item><see cref="RetryMode.FailedChunks"/> (failed or cancelled job): failed chunks go back to pending (their
    /// counts are subtracted from the job, their failed_rows records deleted, so a re-run does not double count);
    /// succeeded chunks are kept.</item>
    /// <item><see cref="RetryMode.Everything"/> (failed or cancelled job): every chunk goes back to pending, the job's
    /// result rows (<c>job_id</c> in its output table) and failed rows are deleted and its counters start from zero.</item>
    /// <item><see cref="RetryMode.Resume"/> (queued or running job): pending chunks are kept as they are.</item>
    /// </list>
    /// In every mode the job becomes running with no error, <c>retries</c> is incremented, and the retry counters of
    /// its pending chunks start again. When the list is empty the caller should try to finish the job at once.
    /// </summary>
    public async Task<IReadOnlyList<ChunkEntity>?> PrepareRetryAsync(Guid id, RetryMode mode, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        string? outputTable;
        var hasChallenger = false;
        await using (var select = new NpgsqlCommand(
            """
            SELECT state, output_table, jsonb_typeof(plan -> 'challenger') = 'object' FROM scoring.jobs WHERE id = $1 FOR UPDATE
            """,
            connection,
            tx))
        {
            select.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
            await using var reader = await select.ExecuteReaderAsync(ct);
            var allowed = mode == RetryMode.Resume ? new[] { "queued", "running" } : ["failed", "cancelled"];
            if (!await reader.ReadAsync(ct) || !allowed.Contains(reader.GetString(0)))
            {
                await reader.DisposeAsync();
                await tx.RollbackAsync(ct);
                return null;
            }

            outputTable = reader.IsDBNull(1) ? null : reader.GetString(1);
            hasChallenger = !reader.IsDBNull(2) && reader.GetBoolean(2);
        }

        await using (var batch = new NpgsqlBatch(connection, tx))
        {
            if (mode == RetryMode.FailedChunks)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    """
                    DELETE FROM scoring.failed_rows AS f
                    USING scoring.chunks AS c
                    WHERE c.job_id = $1 AND c.state = 'failed' AND f.job_id = $1 AND f.chunk_index = c.chunk_index
                    """));
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    """
                    WITH reset AS (
                        SELECT chunk_index, scored_rows, failed_rows
                        FROM scoring.chunks
                        WHERE job_id = $1 AND state = 'failed'
                        FOR UPDATE
                    ), updated AS (
                        UPDATE scoring.chunks AS c
                        SET state = 'pending', scored_rows = 0, failed_rows = 0, error = NULL, finished_at = NULL
                        FROM reset
                        WHERE c.job_id = $1 AND c.chunk_index = reset.chunk_index
                        RETURNING c.chunk_index
                    )
                    UPDATE scoring.jobs AS j
                    SET scored_rows = j.scored_rows - (SELECT COALESCE(sum(scored_rows), 0) FROM reset),
                        failed_rows = j.failed_rows - (SELECT COALESCE(sum(failed_rows), 0) FROM reset),
                        chunks_failed = j.chunks_failed - (SELECT count(*) FROM updated)
                    WHERE j.id = $1
                    """));
            }
            else if (mode == RetryMode.Everything)
            {
                if (outputTable is not null)
                {
                    var (schema, table) = ResultTable.ParseQualifiedName(outputTable);
                    batch.BatchCommands.Add(new NpgsqlBatchCommand(
                        $"DELETE FROM {ResultTable.Quote(schema)}.{ResultTable.Quote(table)} WHERE job_id = $1"));
                    if (hasChallenger)
                    {
                        // The challenger's rows (<table>_challenger, docs/challenger.md) start again with the job's.
                        batch.BatchCommands.Add(new NpgsqlBatchCommand(
                            $"DELETE FROM {ResultTable.Quote(schema)}.{ResultTable.Quote(table + "_challenger")} WHERE job_id = $1"));
                    }
                }

                batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM scoring.challenger_chunk_stats WHERE job_id = $1"));

                batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM scoring.failed_rows WHERE job_id = $1"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.chunks
                    SET state = 'pending', scored_rows = 0, failed_rows = 0, error = NULL, finished_at = NULL
                    WHERE job_id = $1
                    """));
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    """
                    UPDATE scoring.jobs SET scored_rows = 0, failed_rows = 0, chunks_done = 0, chunks_failed = 0 WHERE id = $1
                    """));
            }

            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                """
                UPDATE scoring.chunks
                SET failures = 0, open_attempts = 0, first_failed_at = NULL, next_attempt_at = NULL
                WHERE job_id = $1 AND state = 'pending'
                """));
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                """
                UPDATE scoring.jobs
                SET state = 'running',
                    dispatched_at = NULL,
                    retries = retries + 1,
                    started_at = COALESCE(started_at, now()),
                    error = NULL,
                    finished_at = NULL,
                    ended_event_sent_at = NULL,
                    updated_at = now()
                WHERE id = $1
                """));
            foreach (var command in batch.BatchCommands)
            {
                command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
            }

            await batch.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return await GetPendingChunksAsync(id, ct);
    }

    /// <summary>
    /// Fails a queued or running job at once, in one transaction: the job becomes failed with <paramref name="reason"/>,
    /// and its pending chunks that no worker holds right now fail with a reason that points at the job's (chunks a
    /// worker holds record their own outcome). Returns false when the job was not queued or running.
    /// </summary>
    public async Task<bool> FailJobAsync(Guid id, string reason, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(reason);
        await using var command = _dataSource.CreateCommand(
            """
            WITH job AS (
                SELECT id FROM scoring.jobs WHERE id = $1 AND state IN ('queued', 'running') FOR UPDATE
            ), skipped AS (
                SELECT c.chunk_index FROM scoring.chunks AS c JOIN job ON c.job_id = job.id
                WHERE c.state = 'pending'
                FOR UPDATE OF c SKIP LOCKED
            ), failed AS (
                UPDATE scoring.chunks AS c
                SET state = 'failed', error = $3, finished_at = now(), next_attempt_at = NULL, open_attempts = 0
                FROM skipped WHERE c.job_id = $1 AND c.chunk_index = skipped.chunk_index
                RETURNING 1
            )
            UPDATE scoring.jobs AS j
            SET state = 'failed', error = $2, chunks_failed = j.chunks_failed + (SELECT count(*) FROM failed),
                finished_at = now(), updated_at = now()
            FROM job WHERE j.id = job.id
            """);
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        command.Parameters.Add(DbParameter.Of(reason, NpgsqlDbType.Text));
        command.Parameters.Add(DbParameter.Of($"Not scored: the job failed ({Truncate(reason, 500)})", NpgsqlDbType.Text));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Records that messages for these chunks were sent (<c>sends</c>, <c>sent_at</c>).</summary>
    public async Task MarkChunksSentAsync(Guid id, IReadOnlyList<int> chunkIndexes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(chunkIndexes);
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE scoring.chunks SET sends = sends + 1, sent_at = now(), next_attempt_at = NULL
            WHERE job_id = $1 AND chunk_index = ANY($2) AND state = 'pending'
            """);
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        command.Parameters.Add(DbParameter.Of(chunkIndexes.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Claims up to <paramref name="limit"/> pending chunks of running jobs whose message is presumed gone, marks
    /// them sent (the caller sends them) and returns them. A chunk is due when a worker gave up on it for now and its
    /// backoff elapsed (<c>next_attempt_at</c>), or when nothing happened to it or to its job for
    /// <paramref name="lostAfter"/> (doubling with every send, up to 64 times): its message was lost or dead-lettered
    /// without a worker recording why (e.g. while PostgreSQL was down). Chunks a worker holds are skipped.
    /// </summary>
    public async Task<IReadOnlyList<ChunkEntity>> ClaimChunksToResendAsync(TimeSpan lostAfter, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            WITH due AS (
                SELECT c.job_id, c.chunk_index
                FROM scoring.chunks AS c
                JOIN scoring.jobs AS j ON j.id = c.job_id
                WHERE c.state = 'pending' AND j.state = 'running' AND j.dispatched_at IS NOT NULL
                  AND ((c.next_attempt_at IS NOT NULL AND c.next_attempt_at <= now())
                       OR (c.next_attempt_at IS NULL
                           AND j.updated_at < now() - $1
                           AND coalesce(c.sent_at, j.dispatched_at) < now() - $1 * power(2, least(greatest(c.sends - 1, 0), 6))
                           AND (c.started_at IS NULL OR c.started_at < now() - $1)))
                ORDER BY c.job_id, c.chunk_index
                LIMIT $2
                FOR UPDATE OF c SKIP LOCKED
            )
            UPDATE scoring.chunks AS c
            SET sends = c.sends + 1, sent_at = now(), next_attempt_at = NULL
            FROM due
            WHERE c.job_id = due.job_id AND c.chunk_index = due.chunk_index
            RETURNING c.job_id, c.chunk_index, c.source_path, c.row_group, c.row_start, c.row_count, c.byte_offset,
                      c.sends, c.attempts, c.failures, c.last_error, c.ranges
            """);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = lostAfter });
        command.Parameters.Add(DbParameter.Of(limit, NpgsqlDbType.Integer));
        var chunks = new List<ChunkEntity>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            chunks.Add(new ChunkEntity
            {
                JobId = reader.GetGuid(0),
                ChunkIndex = reader.GetInt32(1),
                SourcePath = reader.GetString(2),
                RowGroup = reader.IsDBNull(3) ? null : reader.GetInt32(3),
                RowStart = reader.GetInt64(4),
                RowCount = reader.GetInt64(5),
                ByteOffset = reader.GetInt64(6),
                Sends = reader.GetInt32(7),
                Attempts = reader.GetInt32(8),
                Failures = reader.GetInt32(9),
                LastError = reader.IsDBNull(10) ? null : reader.GetString(10),
                Ranges = reader.IsDBNull(11) ? null : reader.GetString(11),
            });
        }

        return chunks;
    }

    /// <summary>Records that the broker confirmed the job's chunk messages (see <see cref="ListUndispatchedJobsAsync"/>).</summary>
    public async Task MarkDispatchedAsync(Guid id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE scoring.jobs SET dispatched_at = now() WHERE id = $1");
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Queued or running jobs whose chunk messages were never confirmed as sent and that have not changed since
    /// <paramref name="before"/>: the process that recorded (or retried) them died before sending.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> ListUndispatchedJobsAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            SELECT id FROM scoring.jobs
            WHERE dispatched_at IS NULL AND state IN ('queued', 'running') AND updated_at < $1
            ORDER BY updated_at
            LIMIT 100
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = before });
        return await ReadIdsAsync(command, ct);
    }

    /// <summary>
    /// Running jobs whose chunks have all ended but that nobody finished, and that have not changed since
    /// <paramref name="before"/>: the worker that ended the last chunk stopped before it finished the job.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> ListUnfinishedJobsAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            SELECT id FROM scoring.jobs
            WHERE state = 'running' AND chunks_done + chunks_failed >= chunks_total AND updated_at < $1
            ORDER BY updated_at
            LIMIT 100
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = before });
        return await ReadIdsAsync(command, ct);
    }

    /// <summary>
    /// Records that the broker confirmed the ended event of the job's end at <paramref name="finishedAt"/>; no-op when
    /// the job has ended again since (a retry).
    /// </summary>
    public async Task MarkEndedEventSentAsync(Guid id, DateTimeOffset finishedAt, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "UPDATE scoring.jobs SET ended_event_sent_at = now() WHERE id = $1 AND finished_at = $2 AND ended_event_sent_at IS NULL");
        command.Parameters.Add(DbParameter.Of(id, NpgsqlDbType.Uuid));
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = finishedAt });
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Succeeded or failed jobs that ended before <paramref name="before"/> and whose ended event the broker never
    /// confirmed (the connection dropped between the state change and the publish), oldest first.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> ListUnannouncedEndsAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            SELECT id FROM scoring.jobs
            WHERE state IN ('succeeded', 'failed') AND ended_event_sent_at IS NULL AND finished_at < $1
            ORDER BY finished_at
            LIMIT 100
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = before });
        return await ReadIdsAsync(command, ct);
    }

    /// <summary>Chunks still pending, by chunk index.</summary>
    public async Task<IReadOnlyList<ChunkEntity>> GetPendingChunksAsync(Guid id, CancellationToken ct)
    {
        await using var db = CreateContext();
        return await db.Chunks.AsNoTracking()
            .Where(c => c.JobId == id && c.State == ChunkState.Pending)
            .OrderBy(c => c.ChunkIndex)
            .ToListAsync(ct);
    }

    /// <summary>All chunks of a job, by chunk index.</summary>
    public async Task<IReadOnlyList<ChunkEntity>> GetChunksAsync(Guid id, CancellationToken ct)
    {
        await using var db = CreateContext();
        return await db.Chunks.AsNoTracking()
            .Where(c => c.JobId == id)
            .OrderBy(c => c.ChunkIndex)
            .ToListAsync(ct);
    }

    /// <summary>Failed-row records of a job, by chunk and row.</summary>
    public async Task<IReadOnlyList<FailedRowEntity>> GetFailedRowsAsync(Guid jobId, int limit, CancellationToken ct)
    {
        await using var db = CreateContext();
        return await db.FailedRows.AsNoTracking()
            .Where(f => f.JobId == jobId)
            .OrderBy(f => f.ChunkIndex).ThenBy(f => f.RowNumber).ThenBy(f => f.Id)
            .Take(Math.Clamp(limit, 1, 100_000))
            .ToListAsync(ct);
    }

    /// <summary>The most frequent reasons of a job's failed rows, with their counts, most frequent first.</summary>
    public async Task<IReadOnlyList<(string Reason, long Rows)>> CountFailureReasonsAsync(Guid jobId, int limit, CancellationToken ct)
    {
        // Reasons quote the offending value; group by the text before the first quote so "NaN in f_000" rows aggregate.
        await using var command = _dataSource.CreateCommand(
            """
            SELECT coalesce(column_name, '*') || ': ' || split_part(reason, '''', 1) AS kind, count(*)
            FROM scoring.failed_rows WHERE job_id = $1
            GROUP BY 1 ORDER BY 2 DESC LIMIT $2
            """);
        command.Parameters.Add(DbParameter.Of(jobId, NpgsqlDbType.Uuid));
        command.Parameters.Add(DbParameter.Of(limit, NpgsqlDbType.Integer));
        var reasons = new List<(string Reason, long Rows)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            reasons.Add((reader.GetString(0).TrimEnd(), reader.GetInt64(1)));
        }

        return reasons;
    }

    private static async Task<IReadOnlyList<Guid>> ReadIdsAsync(NpgsqlCommand command, CancellationToken ct)
    {
        var ids = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetGuid(0));
        }

        return ids;
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length] + "…";
}
