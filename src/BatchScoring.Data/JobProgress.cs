namespace BatchScoring.Data;

/// <summary>Counters of a job right after a chunk was committed or failed.</summary>
public sealed record JobProgress(
    Guid JobId,
    JobState State,
    long TotalRows,
    long ScoredRows,
    long FailedRows,
    int ChunksTotal,
    int ChunksDone,
    int ChunksFailed)
{
    /// <summary>True when every chunk is done or failed (the caller should then try to finish the job).</summary>
    public bool AllChunksFinished => ChunksDone + ChunksFailed >= ChunksTotal;
}
