namespace BatchScoring.Application;

/// <summary>
/// RabbitMQ did not take a job's chunk messages in time. The job and its chunks are recorded but not marked dispatched,
/// so the scheduler's dispatch recovery sends them once the broker is back.
/// </summary>
public sealed class BrokerUnavailableException(Guid jobId, Exception? inner = null)
    : Exception($"RabbitMQ did not accept the chunk messages of job {jobId} within {ChunkDispatcher.SendTimeout.TotalSeconds:0} s.", inner)
{
    public Guid JobId { get; } = jobId;
}
