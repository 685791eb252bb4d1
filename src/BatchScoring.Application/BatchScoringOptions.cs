using BatchScoring.Scoring.Data;

namespace BatchScoring.Application;

/// <summary>
/// Service settings, section "BatchScoring":
/// <code>
/// "BatchScoring": { "ModelStorePath": "data/models", "DefaultChunkRows": 50000, "DefaultBatchRows": 8192,
///                   "ChunkConcurrency": 2, "IntraOpThreads": 0, "ModelCacheSize": 4, "DefaultMaxFailedPercent": 1.0 }
/// </code>
/// </summary>
public sealed class BatchScoringOptions
{
    public const string SectionName = "BatchScoring";

    /// <summary>Where model files are stored, content-addressed by SHA-256. Must be shared storage when workers run on several hosts.</summary>
    public string ModelStorePath { get; set; } = Path.Combine("data", "models");

    public int DefaultChunkRows { get; set; } = 50_000;

    public int DefaultBatchRows { get; set; } = 8_192;

    /// <summary>Chunks one worker process scores at once; reading, inference and COPY of different chunks overlap.</summary>
    public int ChunkConcurrency { get; set; } = 2;

    /// <summary>ONNX Runtime intra-op threads per session (0 = cores ÷ <see cref="ChunkConcurrency"/>).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>On CPU, the most rows per ONNX Runtime call; larger batches run in slices (0 = whole batches). See ScoringSessionOptions.</summary>
    public int CpuRowsPerRun { get; set; }

    /// <summary>Loaded model sessions a worker keeps (least recently used are dropped).</summary>
    public int ModelCacheSize { get; set; } = 4;

    public bool PreferCuda { get; set; } = true;

    /// <summary>
    /// ONNX Runtime's CPU arena (its default). It keeps the peak of one batch's tensors per session, which the batch size
    /// bounds; turning it off measured no lower peak RSS with the glibc settings of deploy/ and a little less throughput.
    /// </summary>
    public bool OnnxCpuMemArena { get; set; } = true;

    /// <summary>Prefix for the service's queue names, so several deployments (or test runs) can share one broker.</summary>
    public string QueuePrefix { get; set; } = "";

    public string QueueName(string name) => QueuePrefix + name;

    /// <summary>
    /// RabbitMQ type of the work queues (<c>score-chunks</c>, <c>submit-scoring-job</c>, <c>score-requests</c>): <c>classic</c>,
    /// or <c>quorum</c> (replicated across the cluster's nodes; what RabbitMQ recommends for durable work). A queue's type
    /// cannot change once it exists: delete the queues (when drained) before switching.
    /// </summary>
    public string QueueType { get; set; } = ClassicQueues;

    public const string ClassicQueues = "classic";
    public const string QuorumQueues = "quorum";

    public bool UseQuorumQueues => string.Equals(QueueType, QuorumQueues, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Quorum queues only: deliveries of one message after which RabbitMQ drops it (<c>x-delivery-limit</c>; 0 = none).
    /// A backstop for messages that crash every consumer: it must exceed <c>ChunkRetry:MaxCrashes</c> (and should exceed
    /// <c>Requests:MaxRedeliveries</c>), which fail a poison chunk or request first; a dropped chunk message is re-sent by
    /// the reconciler like a lost one.
    /// </summary>
    public int QueueDeliveryLimit { get; set; }

    public const string DeliveryLimitArgument = "x-delivery-limit";

    /// <summary>Declaration arguments of a work queue of <see cref="QueueType"/> (null for classic queues).</summary>
    public Dictionary<string, object?>? QueueArguments()
    {
        if (!UseQuorumQueues)
        {
            return null;
        }

        var arguments = new Dictionary<string, object?> { ["x-queue-type"] = QuorumQueues };
        if (QueueDeliveryLimit > 0)
        {
            arguments[DeliveryLimitArgument] = QueueDeliveryLimit;
        }

        return arguments;
    }

    /// <summary>Quartz cron (seconds first) of the scheduler's dispatch recovery (see <see cref="DispatchRecovery"/>).</summary>
    public string DispatchRecoverySchedule { get; set; } = "0/10 * * * * ?";

    /// <summary>A job still unsent this long after it was recorded (or retried) is sent by the dispatch recovery.</summary>
    public int DispatchRecoveryGraceSeconds { get; set; } = 60;

    /// <summary>Retries, backoff and limits of chunks (section <c>BatchScoring:ChunkRetry</c>).</summary>
    public ChunkRetryOptions ChunkRetry { get; set; } = new();

    /// <summary>Error threshold for jobs that set neither MaxFailedRows nor MaxFailedPercent.</summary>
    public double DefaultMaxFailedPercent { get; set; } = 1.0;

    /// <summary>Where jobs may read and write files (section "BatchScoring:Storage").</summary>
    public StorageOptions Storage { get; set; } = new();

    /// <summary>The configured roots as a checker; unconfined when <see cref="StorageOptions.AllowedRoots"/> is empty.</summary>
    public StorageRoots GetStorageRoots() => new(Storage.AllowedRoots);

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelStorePath))
        {
            yield return $"{SectionName}:{nameof(ModelStorePath)} is required.";
        }

        if (!string.Equals(QueueType, ClassicQueues, StringComparison.OrdinalIgnoreCase) && !UseQuorumQueues)
        {
            yield return $"{SectionName}:{nameof(QueueType)} must be '{ClassicQueues}' or '{QuorumQueues}' (was '{QueueType}').";
        }

        if (QueueDeliveryLimit < 0 || (QueueDeliveryLimit > 0 && (!UseQuorumQueues || QueueDeliveryLimit <= ChunkRetry.MaxCrashes)))
        {
            yield return $"{SectionName}:{nameof(QueueDeliveryLimit)} must be 0 (none) or, with quorum queues, more than ChunkRetry:MaxCrashes ({ChunkRetry.MaxCrashes}) (was {QueueDeliveryLimit}).";
        }

        if (DispatchRecoveryGraceSeconds < 0)
        {
            yield return $"{SectionName}:{nameof(DispatchRecoveryGraceSeconds)} must not be negative (was {DispatchRecoveryGraceSeconds}).";
        }

        if (DefaultChunkRows < 1)
        {
            yield return $"{SectionName}:{nameof(DefaultChunkRows)} must be at least 1 (was {DefaultChunkRows}).";
        }

        if (DefaultBatchRows < 1)
        {
            yield return $"{SectionName}:{nameof(DefaultBatchRows)} must be at least 1 (was {DefaultBatchRows}).";
        }

        if (IntraOpThreads < 0)
        {
            yield return $"{SectionName}:{nameof(IntraOpThreads)} must not be negative (0 = cores ÷ ChunkConcurrency; was {IntraOpThreads}).";
        }

        if (CpuRowsPerRun < 0)
        {
            yield return $"{SectionName}:{nameof(CpuRowsPerRun)} must not be negative (0 = whole batches; was {CpuRowsPerRun}).";
        }

        if (ChunkConcurrency is < 1 or > 64)
        {
            yield return $"{SectionName}:{nameof(ChunkConcurrency)} must be between 1 and 64 (was {ChunkConcurrency}).";
        }

        if (ModelCacheSize < 1)
        {
            yield return $"{SectionName}:{nameof(ModelCacheSize)} must be at least 1 (was {ModelCacheSize}).";
        }

        foreach (var problem in ChunkRetry.Validate($"{SectionName}:{nameof(ChunkRetry)}"))
        {
            yield return problem;
        }

        if (DefaultMaxFailedPercent is < 0 or > 100)
        {
            yield return $"{SectionName}:{nameof(DefaultMaxFailedPercent)} must be between 0 and 100 (was {DefaultMaxFailedPercent}).";
        }

        for (var i = 0; i < Storage.AllowedRoots.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(Storage.AllowedRoots[i]) || !Path.IsPathFullyQualified(Storage.AllowedRoots[i]))
            {
                yield return $"{StorageRoots.SettingName}:{i} must be an absolute directory path (was '{Storage.AllowedRoots[i]}').";
            }
        }
    }
}

/// <summary>
/// Section "BatchScoring:Storage": <c>"Storage": { "AllowedRoots": ["/data/in", "/data/out"] }</c>. Input files, Parquet
/// output directories and the model store must lie inside one of the roots (after resolving <c>..</c> and symbolic
/// links). Empty (the default): paths are not confined, and the service logs a warning at start-up.
/// </summary>
public sealed class StorageOptions
{
    public List<string> AllowedRoots { get; set; } = [];
}
