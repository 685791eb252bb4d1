namespace BatchScoring.Contracts;

/// <summary>Progress and outcome of a job, as <c>GET /api/jobs/{id}</c> and <c>batchscore jobs status</c> report it.</summary>
public sealed record JobStatus
{
    public required Guid Id { get; init; }

    /// <summary>queued, running, succeeded, failed or cancelled.</summary>
    public required string State { get; init; }

    public required string Model { get; init; }
    public required int ModelVersion { get; init; }
    public required string ModelSha256 { get; init; }
    public required string Input { get; init; }
    public required long TotalRows { get; init; }
    public required long ScoredRows { get; init; }
    public required long FailedRows { get; init; }
    public required int ChunksTotal { get; init; }
    public required int ChunksDone { get; init; }
    public required int ChunksFailed { get; init; }

    /// <summary>Rows finished (scored or failed) per second since the job started.</summary>
    public double? RowsPerSecond { get; init; }

    /// <summary>Estimated seconds to completion at the current rate; null when not running or unknown.</summary>
    public double? EtaSeconds { get; init; }

    public string? OutputTable { get; init; }
    public string? OutputParquet { get; init; }
    public string? Error { get; init; }

    /// <summary>The most frequent failure reasons, with counts.</summary>
    public IReadOnlyList<FailureReasonCount> FailureSummary { get; init; } = [];

    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The challenger scored beside the model and how the two compare; null for a job without one.</summary>
    public ChallengerStatus? Challenger { get; init; }

    /// <summary>
    /// When the job's state or counters last changed (the start of the transaction that changed them, so not always
    /// increasing): the <c>since</c> of a long poll (<c>GET /api/jobs/{id}?wait=30&amp;since=…</c>).
    /// </summary>
    public DateTimeOffset? UpdatedAt { get; init; }

    /// <summary>Seconds the job's committed chunks spent per stage (docs/job-timing.md); null in job lists.</summary>
    public JobStageSeconds? Stages { get; init; }
}

/// <summary>
/// Seconds spent per stage, summed over a job's committed chunks. Stages of one chunk overlap (a COPY runs while the
/// next batch is scored) and chunks run in parallel, so the sum can exceed the job's wall time on a busy worker.
/// </summary>
public sealed record JobStageSeconds(double Reading, double Converting, double Inferring, double Copying, double WritingParquet, double Waiting);

public sealed record FailureReasonCount(string Reason, long Count);

/// <summary>A registered model version, as <c>/api/models</c> reports it.</summary>
public record ModelVersionInfo(string Name, int Version, string Sha256, IReadOnlyList<string> Aliases, DateTimeOffset CreatedAt, ModelSignatureInfo Signature)
{
    /// <summary>When the version was archived (null: it is not): kept for lineage, refused at submit and as an alias target.</summary>
    public DateTimeOffset? ArchivedAt { get; init; }
}

/// <summary>
/// The answer to a registration: the version, and whether the same bytes were already registered under the name
/// (<paramref name="Existing"/>: HTTP 200 and that version instead of 201 and a new one).
/// </summary>
public sealed record ModelRegistration(
    string Name, int Version, string Sha256, IReadOnlyList<string> Aliases, DateTimeOffset CreatedAt, ModelSignatureInfo Signature, bool Existing, string Message)
    : ModelVersionInfo(Name, Version, Sha256, Aliases, CreatedAt, Signature);

/// <summary>One move of a model alias, as <c>/api/models/{name}/aliases/{alias}/history</c> reports it; <paramref name="PreviousVersion"/> null: the alias was created.</summary>
public sealed record ModelAliasChange(string Model, string Alias, int Version, int? PreviousVersion, DateTimeOffset ChangedAt)
{
    /// <summary>Who moved it: the API key's name (<c>local</c> without keys); null for moves recorded before this was kept.</summary>
    public string? ChangedBy { get; init; }

    /// <summary>The move was forced past an incompatible signature.</summary>
    public bool Forced { get; init; }

    /// <summary>Set when this move started or changed a canary (see docs/serving.md): the canary version and its share of rows.</summary>
    public int? CanaryVersion { get; init; }

    public int? CanaryPercent { get; init; }

    /// <summary>The canary this move ended (a plain move ends a running canary).</summary>
    public int? EndedCanaryVersion { get; init; }
}
