using System.Diagnostics;

namespace BatchScoring.Application;

/// <summary>
/// The service's own spans, on the activity source <see cref="SourceName"/>: a chunk and its stages (read, infer,
/// COPY, Parquet) and a score request from its message to its answer. Exported with the MassTransit, ASP.NET Core
/// and Npgsql spans when OTLP is configured (docs/observability.md); without a listener nothing is created.
/// </summary>
public static class ScoringTracing
{
    public const string SourceName = "BatchScoring";

    public const string JobIdTag = "batchscoring.job_id";
    public const string ChunkIndexTag = "batchscoring.chunk_index";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>A span for one stage of a chunk (<c>chunk.read</c>, <c>chunk.infer</c>, <c>chunk.copy</c>, <c>chunk.parquet</c>).</summary>
    public static Activity? Stage(string name, Guid jobId, int chunkIndex)
    {
        var activity = Source.StartActivity(name);
        activity?.SetTag(JobIdTag, jobId.ToString()).SetTag(ChunkIndexTag, chunkIndex);
        return activity;
    }
}
