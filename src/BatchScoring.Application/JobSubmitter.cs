using System.Security.Cryptography;
using System.Text.Json;
using BatchScoring.Application.Challengers;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>The outcome of a submission: the job, and whether this call created it (false: idempotency key matched).</summary>
public sealed record SubmitResult(JobEntity Job, bool Created);

/// <summary>A submission that cannot run; the message names the field, column, file or model at fault.</summary>
public sealed class JobValidationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>An idempotency key was reused with a different request: the client must pick a new key or resend the same body.</summary>
public sealed class IdempotencyConflictException(string message) : Exception(message);

/// <summary>A registered model version whose stored file cannot be used (missing, changed since registration, unloadable).</summary>
public sealed class ModelUnavailableException(string modelName, int version, string cause, Exception inner)
    : Exception($"Model '{modelName}' v{version} cannot be used: {cause}. Register the model file again (a new version) or restore the stored file.", inner)
{
    public string ModelName { get; } = modelName;

    public int Version { get; } = version;

    public static ModelUnavailableException From(ModelVersionEntity version, ModelLoadException ex)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(ex);

        // The cause without the storage path: callers are API clients, not operators (the log keeps the full message).
        var cause = !File.Exists(version.StoragePath) ? "its stored file is missing"
            : ex.Message.Contains("SHA-256", StringComparison.Ordinal)
                ? $"its stored file no longer matches the SHA-256 recorded at registration ({version.Sha256}); the file was changed or corrupted"
                : "its stored file is not a loadable ONNX model";
        return new ModelUnavailableException(version.ModelName, version.Version, cause, ex);
    }
}

/// <summary>
/// Validates a job before any work (model, input, key and feature columns, output table), plans it once (its chunks,
/// and the <see cref="ScoringPlan"/> every worker scores from), records job and chunks in PostgreSQL, then sends one
/// claim-check message per chunk to the workers.
/// </summary>
public sealed class JobSubmitter(
    JobStore store,
    ModelRegistry registry,
    NpgsqlDataSource dataSource,
    ModelCache models,
    ChunkDispatcher dispatcher,
    SqlInputs sqlInputs,
    IOptions<BatchScoringOptions> options,
    ILogger<JobSubmitter> logger)
{
    /// <summary>Submits for the default tenant (jobs that arrive as messages).</summary>
    public Task<SubmitResult> SubmitAsync(SubmitScoringJob request, CancellationToken cancellationToken) =>
        SubmitAsync(request, Tenants.Default, cancellationToken);

    /// <summary>Submits for <paramref name="tenant"/>: the model must be the tenant's, the idempotency key is the tenant's.</summary>
    public async Task<SubmitResult> SubmitAsync(SubmitScoringJob request, string tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(tenant);
        var fingerprint = Fingerprint(request);
        if (request.IdempotencyKey is { } key && await store.GetJobByIdempotencyKeyAsync(key, tenant, cancellationToken) is { } existing)
        {
            return Existing(existing, fingerprint);
        }

        var settings = options.Value;
        ValidateFields(request);
        var problems = new List<string>();

        // Paths are confined before anything opens them; from here on the resolved paths are used, so what was
        // checked is what is read and written.
        var roots = settings.GetStorageRoots();
        var isSql = request.InputSql is not null;
        var input = isSql ? SqlDataset.PathPrefix + request.InputSource : Confine(roots, request.Input, nameof(request.Input));
        var outputParquet = request.OutputParquet is null ? null : Confine(roots, request.OutputParquet, nameof(request.OutputParquet));
        if (outputParquet is not null && HoldsParquetOutput(outputParquet))
        {
            // Parts are named by chunk index: a second job in the same folder would overwrite the first's parts.
            throw new JobValidationException(
                $"OutputParquet: '{outputParquet}' already holds another job's Parquet output (part-*.parquet or {JobFinisher.ManifestFileName}); "
                + "give each job an empty or new folder (e.g. with the date in the path) so that two jobs' parts never mix.");
        }

        var version = await registry.ResolveAsync(request.Model, request.ModelVersion, tenant, cancellationToken)
            ?? throw new JobValidationException(ModelRegistry.NotFound(request.Model, request.ModelVersion));
        if (version.ArchivedAt is not null)
        {
            throw new JobValidationException(ModelRegistry.Archived(version, "it cannot be submitted"));
        }

        var chunkRows = request.ChunkRows ?? settings.DefaultChunkRows;
        DatasetPlan plan;
        SqlInputPlan? sqlInput = null;
        try
        {
            if (isSql)
            {
                (plan, sqlInput) = await sqlInputs.PlanAsync(request, chunkRows, cancellationToken);
            }
            else
            {
                plan = await Dataset.PlanAsync(input, chunkRows, roots, cancellationToken);
            }
        }
        catch (DatasetException ex)
        {
            throw new JobValidationException($"{(isSql ? "InputSql" : "Input")}: {ex.Message}", ex);
        }

        var keyColumn = plan.FindColumn(request.KeyColumn);
        if (keyColumn is null)
        {
            // The input's column names are not listed: for a file that is not really CSV they are its first line.
            problems.Add($"Key column '{request.KeyColumn}' is not in the input '{input}' ({Columns(plan.Columns.Count)}; names are case-sensitive).");
        }
        else if (keyColumn.Kind is ColumnKind.Float32List)
        {
            problems.Add($"Key column '{request.KeyColumn}' is a list; a key must be a scalar.");
        }

        foreach (var name in request.Passthrough.Where(p => plan.FindColumn(p) is null))
        {
            problems.Add($"Passthrough column '{name}' is not in the input '{input}'.");
        }

        ThrowIfAny(problems);

        // The first rows of list columns, to check their widths against the model's input shape before any work.
        var listSample = await SampleListsAsync(plan, sqlInput, roots, cancellationToken);

        ModelLease lease;
        try
        {
            lease = models.Acquire(version);
        }
        catch (ModelLoadException ex)
        {
            logger.LogError("Model {Model} v{Version} cannot be loaded: {Reason}", version.ModelName, version.Version, ex.Message);
            throw ModelUnavailableException.From(version, ex);
        }

        // The one plan of the job: stored on its row, every worker scores from it.
        ScoringPlan scoringPlan;
        using (lease)
        {
            try
            {
                scoringPlan = ScoringPlan.Create(plan.Columns, lease.Model, request.KeyColumn, request.Passthrough, request.Features) with { Sql = sqlInput };
                if (listSample is not null)
                {
                    TensorInputMapping.EnsureListWidths(lease.Model, scoringPlan.MapInputs(lease.Model, request.KeyColumn, request.Passthrough), listSample);
                }
            }
            catch (InputMappingException ex)
            {
                throw new JobValidationException($"Model '{version.ModelName}' v{version.Version} cannot read the input '{input}': {ex.Message}", ex);
            }
        }

        if (request.Challenger is not null)
        {
            scoringPlan = await ChallengerPlanner.PlanAsync(request, tenant, version, scoringPlan, registry, models, dataSource, logger, cancellationToken);
        }

        if (request.OutputTable is { } tableName)
        {
            try
            {
                await scoringPlan.DefineResultTable(tableName, request.KeyColumn, request.Passthrough).EnsureCreatedAsync(dataSource, cancellationToken);
            }
            catch (Exception ex) when (ex is ArgumentException or ResultTableMismatchException)
            {
                throw new JobValidationException($"OutputTable: {ex.Message}", ex);
            }
        }

        var now = DateTimeOffset.UtcNow;
        var job = new JobEntity
        {
            Id = Guid.CreateVersion7(),
            Tenant = tenant,
            IdempotencyKey = request.IdempotencyKey,
            RequestSha256 = fingerprint,
            State = JobState.Queued,
            ModelName = version.ModelName,
            ModelVersion = version.Version,
            ModelSha256 = version.Sha256,
            InputUri = input,
            InputFormat = plan.Format.ToString().ToLowerInvariant(),
            KeyColumn = request.KeyColumn,
            PassthroughColumns = [.. request.Passthrough],
            FeatureColumns = request.Features is null ? null : [.. request.Features],
            OutputTable = request.OutputTable,
            OutputParquet = outputParquet,
            Plan = scoringPlan.ToJson(),
            BatchSize = request.BatchRows ?? settings.DefaultBatchRows,
            ChunkSize = chunkRows,
            AllowNonFinite = request.AllowNonFinite,
            ErrorThresholdRows = request.MaxFailedRows,
            ErrorThresholdPercent = request.MaxFailedRows is null && request.MaxFailedPercent is null ? settings.DefaultMaxFailedPercent : request.MaxFailedPercent,
            TotalRows = plan.TotalRows,
            ChunksTotal = plan.Chunks.Count,
            CreatedAt = now,
            UpdatedAt = now,
        };
        // An input with no rows is still one chunk (of no rows): the job then ends like every other one, through a
        // worker's commit and the finisher (ScoringJobCompleted, an empty part file and _SUCCESS).
        // File inputs: whole row groups (CSV row ranges) packed up to the chunk size, across files; a SQL input's key
        // ranges are already of that size.
        var planned = plan.Chunks.Count == 0 ? [new ChunkSpec(0, isSql ? input : Dataset.ListFiles(request.Input)[0], null, 0, 0)]
            : isSql ? plan.Chunks
            : ChunkPacking.Combine(plan.Chunks, chunkRows);
        job.ChunksTotal = planned.Count;
        var chunks = planned.Select(c => new ChunkEntity
        {
            JobId = job.Id,
            ChunkIndex = c.Index,
            SourcePath = c.Path,
            RowGroup = c.RowGroup,
            RowStart = c.RowStart,
            RowCount = c.RowCount,
            ByteOffset = c.ByteOffset,
            Ranges = ChunkRanges.ToJson(c),
            State = ChunkState.Pending,
        }).ToArray();

        var (saved, created) = await store.CreateJobAsync(job, chunks, cancellationToken) is var r ? (r.Job, r.Created) : default;
        if (!created)
        {
            return Existing(saved, fingerprint);
        }

        logger.LogInformation(
            "Job {JobId}: model {Model} v{Version}, {Rows} rows in {Chunks} chunks from {Input}",
            job.Id, job.ModelName, job.ModelVersion, job.TotalRows, job.ChunksTotal, job.InputUri);
        await dispatcher.DispatchAsync(saved, chunks, cancellationToken);
        return new SubmitResult(await store.GetJobAsync(job.Id, cancellationToken) ?? saved, true);
    }

    /// <summary>
    /// Checks what a request says on its own, before any model, file or database is looked at; used for bodies and
    /// messages alike. Throws <see cref="JobValidationException"/> listing every problem.
    /// </summary>
    public static void ValidateFields(SubmitScoringJob request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var problems = new List<string>();
        Require(request.Model, nameof(request.Model), problems);
        if (request.InputSql is null)
        {
            Require(request.Input, nameof(request.Input), problems);
            if (request.InputSource is not null)
            {
                problems.Add("InputSource is only used with InputSql.");
            }
        }
        else
        {
            SqlInputs.ValidateFields(request, problems);
        }

        Require(request.KeyColumn, nameof(request.KeyColumn), problems);
        if (request.OutputTable is null && request.OutputParquet is null)
        {
            problems.Add("Give an output: OutputTable (a PostgreSQL table) and/or OutputParquet (a directory).");
        }

        if (request.ChunkRows is < 1)
        {
            problems.Add($"ChunkRows must be at least 1 (was {request.ChunkRows}).");
        }

        if (request.BatchRows is < 1)
        {
            problems.Add($"BatchRows must be at least 1 (was {request.BatchRows}).");
        }

        if (request.MaxFailedPercent is < 0 or > 100 || (request.MaxFailedPercent is { } percent && double.IsNaN(percent)))
        {
            problems.Add($"MaxFailedPercent must be between 0 and 100 (was {request.MaxFailedPercent}).");
        }

        if (request.MaxFailedRows is < 0)
        {
            problems.Add($"MaxFailedRows must not be negative (was {request.MaxFailedRows}).");
        }

        if (request.OutputTable is { } table)
        {
            try
            {
                // Strict identifiers only: the name goes into SQL (quoted, but never anything a user could bend).
                ResultTable.ParseQualifiedName(table);
            }
            catch (ArgumentException ex)
            {
                problems.Add($"OutputTable: {ex.Message}");
            }
        }

        if (request.Challenger is { } challenger && ChallengerPlanner.CheckText(challenger) is { } challengerProblem)
        {
            problems.Add(challengerProblem);
        }

        RequireNames(request.Passthrough, nameof(request.Passthrough), problems, nullable: false);
        RequireNames(request.Features, nameof(request.Features), problems, nullable: true);
        ThrowIfAny(problems);
    }

    private static bool HoldsParquetOutput(string folder) =>
        Directory.Exists(folder)
        && (File.Exists(Path.Combine(folder, JobFinisher.ManifestFileName)) || Directory.EnumerateFiles(folder, "part-*.parquet").Any());

    private static SubmitResult Existing(JobEntity job, string fingerprint) =>
        job.RequestSha256 is null || job.RequestSha256 == fingerprint
            ? new SubmitResult(job, false)
            : throw new IdempotencyConflictException(
                $"Idempotency key '{job.IdempotencyKey}' was already used for job {job.Id} with a different request. Resend the same request to get that job, or use a new key for a new job.");

    /// <summary>SHA-256 of the request as JSON, without its idempotency key (the header and the body field are the same key).</summary>
    private static string Fingerprint(SubmitScoringJob request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request with { IdempotencyKey = null }, FingerprintJson)));

    private static readonly JsonSerializerOptions FingerprintJson = new(JsonSerializerDefaults.Web);

    private static void Require(string? value, string field, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"{field} is required.");
        }
    }

    /// <summary>Column lists may come from a message or JSON with nulls in them; say which entry is wrong.</summary>
    private static void RequireNames(IReadOnlyList<string>? names, string field, List<string> problems, bool nullable)
    {
        if (names is null)
        {
            if (!nullable)
            {
                problems.Add($"{field} must be a list of column names (use [] for none), not null.");
            }

            return;
        }

        for (var i = 0; i < names.Count; i++)
        {
            if (string.IsNullOrEmpty(names[i]))
            {
                problems.Add($"{field}[{i}] must be a column name, not null or empty.");
            }
        }
    }

    private static string Confine(StorageRoots roots, string path, string field)
    {
        try
        {
            return roots.Confine(path, field);
        }
        catch (PathNotAllowedException ex)
        {
            throw new JobValidationException(ex.Message, ex);
        }
    }

    /// <summary>Up to a hundred rows of the input's list columns (null when it has none): a list's width is only seen in the data.</summary>
    private async Task<ColumnBatch?> SampleListsAsync(DatasetPlan plan, SqlInputPlan? sqlInput, StorageRoots roots, CancellationToken cancellationToken)
    {
        var lists = plan.Columns.Where(c => c.Kind == ColumnKind.Float32List).ToArray();
        if (lists.Length == 0 || plan.Chunks.Count == 0)
        {
            return null;
        }

        try
        {
            if (sqlInput is not null)
            {
                return await sqlInputs.SampleAsync(sqlInput, lists, cancellationToken);
            }

            var first = plan.Chunks[0];
            return (await Dataset.ReadChunkAsync(plan.Format, first with { RowCount = Math.Min(first.RowCount, SqlDataset.SampleRows) }, lists, roots, cancellationToken)).Batch;
        }
        catch (DatasetException ex)
        {
            throw new JobValidationException($"Input: {ex.Message}", ex);
        }
    }

    private static string Columns(int count) => count == 1 ? "1 column" : $"{count} columns";

    private static void ThrowIfAny(List<string> problems)
    {
        if (problems.Count > 0)
        {
            throw new JobValidationException(string.Join(" ", problems));
        }
    }
}

/// <summary>Sends chunk messages for a job and marks it running; also used by retry and the reconciler to re-send chunks.</summary>
public sealed class ChunkDispatcher(ISendEndpointProvider sendEndpoints, JobStore store, JobFinisher finisher, IOptions<BatchScoringOptions> options)
{
    /// <summary>The queue the workers consume chunk messages from.</summary>
    public const string QueueName = "score-chunks";

    /// <summary>How long a send may wait for the broker: a bus that lost RabbitMQ otherwise holds the caller ~90 s.</summary>
    public static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);

    public async Task DispatchAsync(JobEntity job, IReadOnlyList<ChunkEntity> chunks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(chunks);
        await store.MarkRunningAsync(job.Id, cancellationToken);
        if (chunks.Count == 0)
        {
            // Nothing left to send (a retry of a job whose chunks all ran): decide its outcome like any other job's.
            await store.MarkDispatchedAsync(job.Id, cancellationToken);
            await finisher.TryFinishAsync(job.Id, cancellationToken);
            return;
        }

        // A bus that lost RabbitMQ would hold the caller ~90 s: give up after SendTimeout and let recovery send it.
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(SendTimeout);
            try
            {
                await SendAsync(chunks, timeout.Token);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new BrokerUnavailableException(job.Id, ex);
            }
        }

        await store.MarkChunksSentAsync(job.Id, chunks.Select(c => c.ChunkIndex).ToArray(), cancellationToken);

        // Until this is recorded, the scheduler's dispatch recovery may send the chunks again (duplicates are skipped by the workers).
        await store.MarkDispatchedAsync(job.Id, cancellationToken);
    }

    /// <summary>Sends one message per chunk (no state change; duplicates are harmless, a chunk commits once).</summary>
    public async Task SendAsync(IReadOnlyList<ChunkEntity> chunks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        // To the queue's exchange: a "queue:" address would declare the queue as classic, which fails on a quorum queue;
        // the queue itself is declared at start-up with its configured type (ChunkQueueTopology).
        var endpoint = await sendEndpoints.GetSendEndpoint(new Uri($"exchange:{options.Value.QueueName(QueueName)}"));
        await endpoint.SendBatch(
            chunks.Select(ChunkRanges.ToMessage),
            cancellationToken);
    }
}
