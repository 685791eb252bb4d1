namespace BatchScoring.Contracts;

/// <summary>
/// Asks the service to score a dataset. Sent as a message (queue <c>submit-scoring-job</c>), as the body of
/// <c>POST /api/jobs</c>, or by <c>batchscore jobs submit</c>. JSON schema: schemas/submit-scoring-job.schema.json.
/// </summary>
public sealed record SubmitScoringJob
{
    /// <summary>Registered model name.</summary>
    public required string Model { get; init; }

    /// <summary>Version number or alias (e.g. "production"); null or "latest" = highest version. Resolved once, when the job starts.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(StringOrNumberConverter))]
    public string? ModelVersion { get; init; }

    /// <summary>
    /// A Parquet file, a directory of Parquet files, or a CSV file, readable by the workers (shared storage).
    /// Leave it out (or empty) when the rows come from <see cref="InputSql"/>.
    /// </summary>
    public string Input { get; init; } = "";

    /// <summary>
    /// A single SELECT whose rows are scored, instead of <see cref="Input"/>; it runs in a read-only transaction on
    /// the PostgreSQL source named by <see cref="InputSource"/>, split into key ranges of <see cref="KeyColumn"/>.
    /// </summary>
    public string? InputSql { get; init; }

    /// <summary>With <see cref="InputSql"/>: the name of a source configured as <c>BatchScoring:Sources:&lt;name&gt;</c> (an Npgsql connection string).</summary>
    public string? InputSource { get; init; }

    /// <summary>Column that identifies a row in the results (and in failed-row records).</summary>
    public required string KeyColumn { get; init; }

    /// <summary>Input columns copied unchanged into the results.</summary>
    public IReadOnlyList<string> Passthrough { get; init; } = [];

    /// <summary>For a model with one [N,F] input: the F feature columns, in order. Default: model metadata, else all numeric columns.</summary>
    public IReadOnlyList<string>? Features { get; init; }

    /// <summary>Results table, <c>schema.table</c> or <c>table</c> (schema <c>scoring</c>); plain lower-case identifiers.</summary>
    public string? OutputTable { get; init; }

    /// <summary>Directory for Parquet part files and the <c>_SUCCESS</c> manifest.</summary>
    public string? OutputParquet { get; init; }

    /// <summary>Rows per chunk (one message each). Default from configuration (50,000).</summary>
    public int? ChunkRows { get; init; }

    /// <summary>Rows per inference call. Default from configuration (8,192).</summary>
    public int? BatchRows { get; init; }

    /// <summary>Let NaN/Infinity features reach the model (for models that handle them). Default: such rows fail.</summary>
    public bool AllowNonFinite { get; init; }

    /// <summary>The job fails when more rows than this fail.</summary>
    public long? MaxFailedRows { get; init; }

    /// <summary>The job fails when more than this percentage of rows fail. Default 1%.</summary>
    public double? MaxFailedPercent { get; init; }

    /// <summary>Resubmitting with the same key returns the existing job instead of starting another.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// A second model version, <c>name@version</c> or <c>name@alias</c> (<c>name</c> alone: its latest version), that
    /// scores the same rows in the same pass; its results go to <c>&lt;OutputTable&gt;_challenger</c> and
    /// <c>&lt;OutputParquet&gt;/challenger/</c>. It must take the same inputs as the model. See docs/challenger.md.
    /// </summary>
    public string? Challenger { get; init; }
}

/// <summary>
/// Claim check for one chunk of a job: the worker reads the rows from the input itself. A chunk that combines several
/// row groups or files lists them in <see cref="Ranges"/>; its other fields then name its first range, except
/// <see cref="RowCount"/>, the rows of all ranges (so a worker that predates ranges fails such a chunk as outside its row
/// group instead of scoring part of it). Without <see cref="Ranges"/> (messages sent before ranges existed) the chunk is
/// the one slice the fields name. JSON schema: schemas/score-chunk.schema.json.
/// </summary>
public sealed record ScoreChunk(Guid JobId, int ChunkIndex, string Path, int? RowGroup, long RowStart, long RowCount, long ByteOffset)
{
    /// <summary>The slices of the chunk in reading order, when it has more than one; null otherwise.</summary>
    public IReadOnlyList<ScoreChunkRange>? Ranges { get; init; }
}

/// <summary>One slice of a chunk: a Parquet row group (or a row range of one), or a CSV row range from a byte offset.</summary>
public sealed record ScoreChunkRange(string Path, int? RowGroup, long RowStart, long RowCount, long ByteOffset);

/// <summary>Published once when a job has scored every chunk within its error threshold.</summary>
public sealed record ScoringJobCompleted(
    Guid JobId, string Model, int ModelVersion, long TotalRows, long ScoredRows, long FailedRows,
    string? OutputTable, string? OutputParquet, DateTimeOffset CompletedAt);

/// <summary>Published once when a job fails (error threshold exceeded, unreadable chunks).</summary>
public sealed record ScoringJobFailed(
    Guid JobId, string Model, int ModelVersion, long TotalRows, long ScoredRows, long FailedRows, string Reason, DateTimeOffset FailedAt);

/// <summary>Reply to a <see cref="SubmitScoringJob"/> sent as a request: the job id, and whether this submission created it.</summary>
public sealed record SubmitScoringJobAccepted(Guid JobId, bool Created, string State);
