using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>Result of <see cref="JobStore.CreateJobAsync"/>: the job, and whether this call created it.</summary>
public sealed record JobCreateResult(JobEntity Job, bool Created);

/// <summary>One move of a model alias: to <paramref name="Version"/>, from <paramref name="PreviousVersion"/> (null: created).</summary>
public sealed record AliasChange(string Model, string Alias, int Version, int? PreviousVersion, DateTimeOffset ChangedAt);

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
/// Jobs, chunks and the model registry. Reads go through EF Core (<see cref="ScoringDbContext"/>);
/// state transitions are single SQL statements (<c>UPDATE … WHERE state = … RETURNING</c>) so that
/// concurrent callers cannot both win.
/// </summary>
public sealed class JobStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly DbContextOptions<ScoringDbContext> _options;

    public JobStore(NpgsqlDataSource dataSource)
        : this(dataSource, ScoringDbContext.CreateOptions(dataSource))
    {
    }

    public JobStore(NpgsqlDataSource dataSource, DbContextOptions<ScoringDbContext> options)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        _dataSource = dataSource;
        _options = options;
    }

    public NpgsqlDataSource DataSource => _dataSource;

    /// <summary>A new context (caller disposes).</summary>
    public ScoringDbContext CreateContext() => new(_options);

    // ---------------------------------------------------------------- jobs

    /// <summary>
    /// Inserts the job and its chunks in one transaction. <c>chunks_total</c> is set to the chunk count,
    /// <c>total_rows</c> to the sum of chunk rows when the job does not set it, and every chunk to pending.
    /// When a job of the same tenant with the same idempotency key exists, nothing is written and that job is returned
    /// with <see cref="JobCreateResult.Created"/> false.
    /// </summary>
    public async Task<JobCreateResult> CreateJobAsync(JobEntity job, IReadOnlyList<ChunkEntity> chunks, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(chunks);
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
            p.Add(Param(job.Id, NpgsqlDbType.Uuid));
            p.Add(Param(job.IdempotencyKey, NpgsqlDbType.Text));
            p.Add(Param(StateText.ToDb(job.State), NpgsqlDbType.Text));
            p.Add(Param(job.ModelName, NpgsqlDbType.Text));
            p.Add(Param(job.ModelVersion, NpgsqlDbType.Integer));
            p.Add(Param(job.ModelSha256, NpgsqlDbType.Text));
            p.Add(Param(job.InputUri, NpgsqlDbType.Text));
            p.Add(Param(job.InputFormat, NpgsqlDbType.Text));
            p.Add(Param(job.KeyColumn, NpgsqlDbType.Text));
            p.Add(Param(job.PassthroughColumns ?? [], NpgsqlDbType.Array | NpgsqlDbType.Text));
            p.Add(Param(job.FeatureColumns, NpgsqlDbType.Array | NpgsqlDbType.Text));
            p.Add(Param(job.OutputTable, NpgsqlDbType.Text));
            p.Add(Param(job.OutputParquet, NpgsqlDbType.Text));
            p.Add(Param(job.BatchSize, NpgsqlDbType.Integer));
            p.Add(Param(job.ChunkSize, NpgsqlDbType.Integer));
            p.Add(Param(job.AllowNonFinite, NpgsqlDbType.Boolean));
            p.Add(Param(job.ErrorThresholdRows, NpgsqlDbType.Bigint));
            p.Add(Param(job.ErrorThresholdPercent, NpgsqlDbType.Double));
            p.Add(Param(totalRows, NpgsqlDbType.Bigint));
            p.Add(Param(chunks.Count, NpgsqlDbType.Integer));
            p.Add(Param(job.Tenant, NpgsqlDbType.Text));
            p.Add(Param(job.RequestSha256, NpgsqlDbType.Text));
            p.Add(Param(job.Plan, NpgsqlDbType.Jsonb));

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

            if (chunks.Count > 0)
            {
                await using var importer = await connection.BeginBinaryImportAsync(
                    """
                    COPY scoring.chunks (job_id, chunk_index, source_path, row_group, row_start, row_count, byte_offset) FROM STDIN (FORMAT BINARY)
                    """,
                    ct);
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
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
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
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
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
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
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
        await using (var select = new NpgsqlCommand(
            """
            SELECT state, output_table FROM scoring.jobs WHERE id = $1 FOR UPDATE
            """,
            connection,
            tx))
        {
            select.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
            await using var reader = await select.ExecuteReaderAsync(ct);
            var allowed = mode == RetryMode.Resume ? new[] { "queued", "running" } : ["failed", "cancelled"];
            if (!await reader.ReadAsync(ct) || !allowed.Contains(reader.GetString(0)))
            {
                await reader.DisposeAsync();
                await tx.RollbackAsync(ct);
                return null;
            }

            outputTable = reader.IsDBNull(1) ? null : reader.GetString(1);
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
                }

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
                    updated_at = now()
                WHERE id = $1
                """));
            foreach (var command in batch.BatchCommands)
            {
                command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
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
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
        command.Parameters.Add(Param(reason, NpgsqlDbType.Text));
        command.Parameters.Add(Param($"Not scored: the job failed ({Truncate(reason, 500)})", NpgsqlDbType.Text));
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
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
        command.Parameters.Add(Param(chunkIndexes.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
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
                      c.sends, c.attempts, c.failures, c.last_error
            """);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = lostAfter });
        command.Parameters.Add(Param(limit, NpgsqlDbType.Integer));
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
            });
        }

        return chunks;
    }

    /// <summary>Records that the broker confirmed the job's chunk messages (see <see cref="ListUndispatchedJobsAsync"/>).</summary>
    public async Task MarkDispatchedAsync(Guid id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE scoring.jobs SET dispatched_at = now() WHERE id = $1");
        command.Parameters.Add(Param(id, NpgsqlDbType.Uuid));
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
        var ids = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetGuid(0));
        }

        return ids;
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

    // ---------------------------------------------------------------- models

    /// <summary>Inserts a model version, or updates sha256/storage_path/signature of an existing one.</summary>
    public async Task<ModelVersionEntity> UpsertModelVersionAsync(ModelVersionEntity model, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(model.ModelName);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(model.Version);
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO scoring.model_versions (model_name, version, sha256, storage_path, signature)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (model_name, version) DO UPDATE
            SET sha256 = EXCLUDED.sha256, storage_path = EXCLUDED.storage_path, signature = EXCLUDED.signature
            RETURNING created_at
            """);
        AddModelParameters(command, model);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        model.CreatedAt = reader.GetFieldValue<DateTimeOffset>(0);
        return model;
    }

    /// <summary>
    /// Registers <paramref name="model"/> as the next version of its model (highest + 1, starting at 1),
    /// serialised per model name; <see cref="ModelVersionEntity.Version"/> is set on return. Throws
    /// <see cref="ModelNameTakenException"/> when the name's versions belong to another tenant.
    /// </summary>
    public async Task<ModelVersionEntity> AddNextModelVersionAsync(ModelVersionEntity model, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(model.ModelName);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var lockCommand = new NpgsqlCommand(
            """
            SELECT pg_advisory_xact_lock(hashtext('batchscoring.model_version'), hashtext($1))
            """,
            connection,
            tx))
        {
            lockCommand.Parameters.Add(Param(model.ModelName, NpgsqlDbType.Text));
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO scoring.model_versions (model_name, version, sha256, storage_path, signature, tenant)
            SELECT $1, COALESCE(max(version), 0) + 1, $3, $4, $5, $6
            FROM scoring.model_versions WHERE model_name = $1
            HAVING bool_and(tenant = $6) IS NOT FALSE
            RETURNING version, created_at
            """,
            connection,
            tx);
        AddModelParameters(insert, model);
        insert.Parameters.Add(Param(model.Tenant, NpgsqlDbType.Text));
        await using (var reader = await insert.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct))
            {
                throw new ModelNameTakenException(model.ModelName);
            }

            model.Version = reader.GetInt32(0);
            model.CreatedAt = reader.GetFieldValue<DateTimeOffset>(1);
        }

        await tx.CommitAsync(ct);
        return model;
    }

    public async Task<ModelVersionEntity?> GetModelVersionAsync(string modelName, int version, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelVersions.AsNoTracking()
            .SingleOrDefaultAsync(m => m.ModelName == modelName && m.Version == version, ct);
    }

    /// <summary>
    /// Resolves a version reference: null, empty or <c>latest</c> → the highest version; an integer →
    /// that version; anything else → the alias of that name. Null when nothing matches.
    /// </summary>
    public async Task<ModelVersionEntity?> ResolveModelAsync(string modelName, string? versionOrAlias, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        var versions = db.ModelVersions.AsNoTracking().Where(m => m.ModelName == modelName);
        if (string.IsNullOrWhiteSpace(versionOrAlias) || string.Equals(versionOrAlias.Trim(), "latest", StringComparison.OrdinalIgnoreCase))
        {
            return await versions.OrderByDescending(m => m.Version).FirstOrDefaultAsync(ct);
        }

        var reference = versionOrAlias.Trim();
        if (int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            return await versions.SingleOrDefaultAsync(m => m.Version == version, ct);
        }

        return await versions
            .Where(m => db.ModelAliases.Any(a => a.ModelName == modelName && a.Alias == reference && a.Version == m.Version))
            .SingleOrDefaultAsync(ct);
    }

    /// <summary>
    /// Points <paramref name="alias"/> at <paramref name="version"/> (creating or moving it); returns the
    /// version it pointed at before, or null. Throws <see cref="KeyNotFoundException"/> when the version
    /// does not exist and <see cref="ArgumentException"/> for an alias that would be ambiguous
    /// (<c>latest</c>, a number) or does not start with a letter.
    /// </summary>
    /// <summary>Moves of an alias, newest first (<c>scoring.model_alias_history</c>).</summary>
    public async Task<IReadOnlyList<AliasChange>> ListAliasHistoryAsync(string modelName, string alias, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            SELECT version, previous_version, changed_at FROM scoring.model_alias_history
            WHERE model_name = $1 AND alias = $2 ORDER BY id DESC LIMIT $3
            """);
        command.Parameters.Add(Param(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(Param(alias, NpgsqlDbType.Text));
        command.Parameters.Add(Param(limit, NpgsqlDbType.Integer));
        var changes = new List<AliasChange>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            changes.Add(new AliasChange(modelName, alias, reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetInt32(1), reader.GetFieldValue<DateTimeOffset>(2)));
        }

        return changes;
    }

    public async Task<int?> SetAliasAsync(string modelName, string alias, int version, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ValidateAlias(alias);
        await using var command = _dataSource.CreateCommand(
            """
            WITH previous AS (
                SELECT version FROM scoring.model_aliases WHERE model_name = $1 AND alias = $2 FOR UPDATE
            ), upserted AS (
                INSERT INTO scoring.model_aliases (model_name, alias, version) VALUES ($1, $2, $3)
                ON CONFLICT (model_name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()
                RETURNING 1
            ), history AS (
                INSERT INTO scoring.model_alias_history (model_name, alias, version, previous_version)
                SELECT $1, $2, $3, (SELECT version FROM previous) FROM upserted
                RETURNING 1
            )
            SELECT (SELECT version FROM previous), (SELECT count(*) FROM upserted), (SELECT count(*) FROM history)
            """);
        command.Parameters.Add(Param(modelName, NpgsqlDbType.Text));
        command.Parameters.Add(Param(alias, NpgsqlDbType.Text));
        command.Parameters.Add(Param(version, NpgsqlDbType.Integer));
        try
        {
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return reader.IsDBNull(0) ? null : reader.GetInt32(0);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            throw new KeyNotFoundException($"Model '{modelName}' has no version {version}; alias '{alias}' was not changed.", e);
        }
    }

    public async Task<bool> DeleteAliasAsync(string modelName, string alias, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        ArgumentNullException.ThrowIfNull(alias);
        await using var db = CreateContext();
        return await db.ModelAliases.Where(a => a.ModelName == modelName && a.Alias == alias)
            .ExecuteDeleteAsync(ct) > 0;
    }

    public Task<IReadOnlyList<string>> ListModelNamesAsync(CancellationToken ct) => ListModelNamesAsync(null, ct);

    /// <summary>Registered model names of a tenant (null: of every tenant), in order.</summary>
    public async Task<IReadOnlyList<string>> ListModelNamesAsync(string? tenant, CancellationToken ct)
    {
        await using var db = CreateContext();
        var versions = db.ModelVersions.AsNoTracking();
        if (tenant is not null)
        {
            versions = versions.Where(m => m.Tenant == tenant);
        }

        return await versions.Select(m => m.ModelName).Distinct().OrderBy(n => n).ToListAsync(ct);
    }

    public async Task<IReadOnlyList<ModelVersionEntity>> ListModelVersionsAsync(string modelName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelVersions.AsNoTracking().Where(m => m.ModelName == modelName).OrderBy(m => m.Version)
            .ToListAsync(ct);
    }

    public async Task<IReadOnlyList<ModelAliasEntity>> ListAliasesAsync(string modelName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        await using var db = CreateContext();
        return await db.ModelAliases.AsNoTracking().Where(a => a.ModelName == modelName).OrderBy(a => a.Alias)
            .ToListAsync(ct);
    }

    private static void ValidateAlias(string alias)
    {
        ArgumentException.ThrowIfNullOrEmpty(alias);
        if (!char.IsAsciiLetter(alias[0]) || alias.Length > 63
            || !alias.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            || string.Equals(alias, "latest", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"Invalid alias '{alias}': an alias starts with a letter, has at most 63 letters, digits, '_', '-' or '.', and is not 'latest'.",
                nameof(alias));
        }
    }

    private static void AddModelParameters(NpgsqlCommand command, ModelVersionEntity model)
    {
        command.Parameters.Add(Param(model.ModelName, NpgsqlDbType.Text));
        command.Parameters.Add(Param(model.Version, NpgsqlDbType.Integer));
        command.Parameters.Add(Param(model.Sha256, NpgsqlDbType.Text));
        command.Parameters.Add(Param(model.StoragePath, NpgsqlDbType.Text));
        command.Parameters.Add(Param(string.IsNullOrEmpty(model.Signature) ? "{}" : model.Signature, NpgsqlDbType.Jsonb));
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length] + "…";

    private static NpgsqlParameter Param(object? value, NpgsqlDbType type) => new() { Value = value ?? DBNull.Value, NpgsqlDbType = type };
}
