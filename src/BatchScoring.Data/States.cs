namespace BatchScoring.Data;

/// <summary>Life cycle of a scoring job; stored as lower-case text in <c>scoring.jobs.state</c>.</summary>
public enum JobState
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>Life cycle of a chunk; stored as lower-case text in <c>scoring.chunks.state</c>.</summary>
public enum ChunkState
{
    Pending,
    Succeeded,
    Failed,
}

/// <summary>Conversions between the state enums and their database text.</summary>
public static class StateText
{
    public static string ToDb(JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static string ToDb(ChunkState state) => state switch
    {
        ChunkState.Pending => "pending",
        ChunkState.Succeeded => "succeeded",
        ChunkState.Failed => "failed",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static JobState ParseJobState(string text) => text switch
    {
        "queued" => JobState.Queued,
        "running" => JobState.Running,
        "succeeded" => JobState.Succeeded,
        "failed" => JobState.Failed,
        "cancelled" => JobState.Cancelled,
        _ => throw new FormatException($"Unknown job state '{text}'."),
    };

    public static ChunkState ParseChunkState(string text) => text switch
    {
        "pending" => ChunkState.Pending,
        "succeeded" => ChunkState.Succeeded,
        "failed" => ChunkState.Failed,
        _ => throw new FormatException($"Unknown chunk state '{text}'."),
    };

    /// <summary>True for states a job does not leave by itself (only a retry moves it on).</summary>
    public static bool IsTerminal(JobState state) => state is JobState.Succeeded or JobState.Failed or JobState.Cancelled;
}
