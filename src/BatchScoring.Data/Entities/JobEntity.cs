namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.jobs</c>.</summary>
public sealed class JobEntity
{
    public Guid Id { get; set; }

    /// <summary>Tenant of the API key that submitted the job (<see cref="Tenants.Default"/> for messages and older rows).</summary>
    public string Tenant { get; set; } = Tenants.Default;

    /// <summary>SHA-256 of the submitted request (without its idempotency key): a reused key must come with the same request.</summary>
    public string? RequestSha256 { get; set; }

    /// <summary>Client-chosen key that makes resubmission safe; unique per tenant when set.</summary>
    public string? IdempotencyKey { get; set; }

    public JobState State { get; set; } = JobState.Queued;

    public string ModelName { get; set; } = "";

    public int ModelVersion { get; set; }

    public string ModelSha256 { get; set; } = "";

    public string InputUri { get; set; } = "";

    public string InputFormat { get; set; } = "";

    public string KeyColumn { get; set; } = "";

    public string[] PassthroughColumns { get; set; } = [];

    /// <summary>Input columns fed to the model; null means "the model's input names".</summary>
    public string[]? FeatureColumns { get; set; }

    /// <summary>Result table, <c>schema.table</c> or <c>table</c>; null when results go to Parquet only.</summary>
    public string? OutputTable { get; set; }

    public string? OutputParquet { get; set; }

    /// <summary>
    /// The submitter's plan (jsonb): columns read with their kinds, carried columns, resolved feature columns, model
    /// outputs. Workers score from it. Null for jobs submitted before it was stored.
    /// </summary>
    public string? Plan { get; set; }

    public int BatchSize { get; set; }

    public int ChunkSize { get; set; }

    public bool AllowNonFinite { get; set; }

    /// <summary>The job fails when more rows than this fail; null = no row limit.</summary>
    public long? ErrorThresholdRows { get; set; }

    /// <summary>The job fails when more than this percentage of rows fail; null = no percentage limit.</summary>
    public double? ErrorThresholdPercent { get; set; }

    public long TotalRows { get; set; }

    public long ScoredRows { get; set; }

    public long FailedRows { get; set; }

    public int ChunksTotal { get; set; }

    public int ChunksDone { get; set; }

    public int ChunksFailed { get; set; }

    public string? Error { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>When the broker confirmed the event of the job's current end (null until then; see <see cref="JobStore.ListUnannouncedEndsAsync"/>).</summary>
    public DateTimeOffset? EndedEventSentAt { get; set; }

    /// <summary>How many times the job was retried (workers key what they cache about a job by it).</summary>
    public int Retries { get; set; }
}
