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

/// <summary>
/// Validates a job before any work (model, input, key and feature columns, output table), plans its chunks,
/// records job and chunks in PostgreSQL, then sends one claim-check message per chunk to the workers.
/// </summary>
public sealed class JobSubmitter(
    JobStore store,
    NpgsqlDataSource dataSource,
    ModelCache models,
    ChunkDispatcher dispatcher,
    IOptions<BatchScoringOptions> options,
    ILogger<JobSubmitter> logger)
{
    public async Task<SubmitResult> SubmitAsync(SubmitScoringJob request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.IdempotencyKey is { } key && await store.GetJobByIdempotencyKeyAsync(key, cancellationToken) is { } existing)
        {
            return new SubmitResult(existing, false);
        }

        var settings = options.Value;
        var problems = new List<string>();
        Require(request.Model, nameof(request.Model), problems);
        Require(request.Input, nameof(request.Input), problems);
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

        if (request.MaxFailedPercent is < 0 or > 100)
        {
            problems.Add($"MaxFailedPercent must be between 0 and 100 (was {request.MaxFailedPercent}).");
        }

        if (request.MaxFailedRows is < 0)
        {
            problems.Add($"MaxFailedRows must not be negative (was {request.MaxFailedRows}).");
        }

        ThrowIfAny(problems);

        var version = await store.ResolveModelAsync(request.Model, request.ModelVersion, cancellationToken)
            ?? throw new JobValidationException(ModelRegistry.NotFound(request.Model, request.ModelVersion));

        var chunkRows = request.ChunkRows ?? settings.DefaultChunkRows;
        DatasetPlan plan;
        try
        {
            plan = await Dataset.PlanAsync(request.Input, chunkRows, cancellationToken);
        }
        catch (DatasetException ex)
        {
            throw new JobValidationException($"Input: {ex.Message}", ex);
        }

        var keyColumn = plan.FindColumn(request.KeyColumn);
        if (keyColumn is null)
        {
            problems.Add($"Key column '{request.KeyColumn}' is not in the input (columns: {string.Join(", ", plan.Columns.Select(c => c.Name))}).");
        }
        else if (keyColumn.Kind is ColumnKind.Float32List)
        {
            problems.Add($"Key column '{request.KeyColumn}' is a list; a key must be a scalar.");
        }

        foreach (var name in request.Passthrough.Where(p => plan.FindColumn(p) is null))
        {
            problems.Add($"Passthrough column '{name}' is not in the input.");
        }

        ThrowIfAny(problems);

        IReadOnlyList<(string Name, ColumnKind Kind)> outputs;
        using (var lease = models.Acquire(version))
        {
            try
            {
                lease.Model.MapInputs(
                    plan.Columns.Select(c => (c.Name, c.Kind)).ToArray(),
                    new InputMappingRequest { KeyColumn = request.KeyColumn, Passthrough = request.Passthrough, Features = request.Features });
            }
            catch (InputMappingException ex)
            {
                throw new JobValidationException($"Model '{version.ModelName}' v{version.Version} cannot read this input: {ex.Message}", ex);
            }

            outputs = lease.Model.DescribeOutputs();
        }

        if (request.OutputTable is { } tableName)
        {
            try
            {
                var table = ResultTable.Define(
                    tableName,
                    new ResultColumn(keyColumn!.Name, keyColumn.Kind),
                    request.Passthrough.Select(p => plan.FindColumn(p)!).Select(c => new ResultColumn(c.Name, c.Kind)).ToArray(),
                    outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
                await table.EnsureCreatedAsync(dataSource, cancellationToken);
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
            IdempotencyKey = request.IdempotencyKey,
            State = JobState.Queued,
            ModelName = version.ModelName,
            ModelVersion = version.Version,
            ModelSha256 = version.Sha256,
            InputUri = Path.GetFullPath(request.Input),
            InputFormat = plan.Format.ToString().ToLowerInvariant(),
            KeyColumn = request.KeyColumn,
            PassthroughColumns = [.. request.Passthrough],
            FeatureColumns = request.Features is null ? null : [.. request.Features],
            OutputTable = request.OutputTable,
            OutputParquet = request.OutputParquet is null ? null : Path.GetFullPath(request.OutputParquet),
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
        var chunks = plan.Chunks.Select(c => new ChunkEntity
        {
            JobId = job.Id,
            ChunkIndex = c.Index,
            SourcePath = c.Path,
            RowGroup = c.RowGroup,
            RowStart = c.RowStart,
            RowCount = c.RowCount,
            ByteOffset = c.ByteOffset,
            State = ChunkState.Pending,
        }).ToArray();

        var (saved, created) = await store.CreateJobAsync(job, chunks, cancellationToken) is var r ? (r.Job, r.Created) : default;
        if (!created)
        {
            return new SubmitResult(saved, false);
        }

        logger.LogInformation(
            "Job {JobId}: model {Model} v{Version}, {Rows} rows in {Chunks} chunks from {Input}",
            job.Id, job.ModelName, job.ModelVersion, job.TotalRows, job.ChunksTotal, job.InputUri);
        await dispatcher.DispatchAsync(saved, chunks, cancellationToken);
        return new SubmitResult(await store.GetJobAsync(job.Id, cancellationToken) ?? saved, true);
    }

    private static void Require(string? value, string field, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"{field} is required.");
        }
    }

    private static void ThrowIfAny(List<string> problems)
    {
        if (problems.Count > 0)
        {
            throw new JobValidationException(string.Join(" ", problems));
        }
    }
}

/// <summary>Sends chunk messages for a job and marks it running; also used by retry to re-send unfinished chunks.</summary>
public sealed class ChunkDispatcher(ISendEndpointProvider sendEndpoints, JobStore store, IOptions<BatchScoringOptions> options)
{
    /// <summary>The queue the workers consume chunk messages from.</summary>
    public const string QueueName = "score-chunks";

    /// <summary>How long a send may wait for the broker: a bus that lost RabbitMQ otherwise holds the caller ~90 s.</summary>
    public static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);

    public async Task DispatchAsync(JobEntity job, IReadOnlyList<ChunkEntity> chunks, CancellationToken cancellationToken)
    {
        await store.MarkRunningAsync(job.Id, cancellationToken);
        if (chunks.Count == 0)
        {
            await store.MarkDispatchedAsync(job.Id, cancellationToken);
            await store.TryFinishJobAsync(job.Id, cancellationToken);
            return;
        }

        // To the queue's exchange: a "queue:" address would declare the queue as classic, which fails on a quorum queue;
        // the queue itself is declared at start-up with its configured type (ChunkQueueTopology).
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(SendTimeout);
            try
            {
                var endpoint = await sendEndpoints.GetSendEndpoint(new Uri($"exchange:{options.Value.QueueName(QueueName)}"));
                await endpoint.SendBatch(
                    chunks.Select(c => new ScoreChunk(job.Id, c.ChunkIndex, c.SourcePath, c.RowGroup, c.RowStart, c.RowCount, c.ByteOffset)),
                    timeout.Token);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new BrokerUnavailableException(job.Id, ex);
            }
        }

        // Until this is recorded, the scheduler's dispatch recovery may send the chunks again (duplicates are skipped by the workers).
        await store.MarkDispatchedAsync(job.Id, cancellationToken);
    }
}
