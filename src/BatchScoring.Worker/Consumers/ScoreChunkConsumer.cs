using BatchScoring.Application;
using BatchScoring.Contracts;
using BatchScoring.Scoring.Data;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Worker.Consumers;

/// <summary>Scores one chunk per message; the message is acknowledged only once the chunk's outcome is recorded in PostgreSQL.</summary>
public sealed class ScoreChunkConsumer(ChunkScorer scorer, ILogger<ScoreChunkConsumer> logger) : IConsumer<ScoreChunk>
{
    public async Task Consume(ConsumeContext<ScoreChunk> context)
    {
        var queueWait = context.SentTime is { } sent ? TimeSpan.FromTicks(Math.Max(0, (DateTime.UtcNow - sent).Ticks)) : TimeSpan.Zero;
        if (context.SentTime is not null)
        {
            ScoringMetrics.QueueWaitSeconds.Record(queueWait.TotalSeconds, ScoringMetrics.ModeTag("job"));
        }

        // Every error ends in a recorded outcome inside the scorer (failed, or left to the reconciler with backoff), so
        // the message is acknowledged. Only when even that cannot be recorded (PostgreSQL down) does this throw: the
        // message goes to score-chunks_error, and the reconciler re-sends the chunk once its job has been quiet.
        var chunk = context.Message;
        // Every line logged while the chunk is scored carries its job and chunk (JSON logs show scopes).
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["JobId"] = chunk.JobId, ["ChunkIndex"] = chunk.ChunkIndex });
        using var activity = ScoringTracing.Stage("chunk", chunk.JobId, chunk.ChunkIndex);
        OperationsMetrics.ChunksInProgress.Add(1);
        try
        {
            var outcome = await scorer.ScoreAsync(chunk, queueWait, context.CancellationToken);
            activity?.SetTag("batchscoring.chunk_outcome", outcome.ToString());
        }
        finally
        {
            OperationsMetrics.ChunksInProgress.Add(-1);
        }
    }
}

public sealed class ScoreChunkConsumerDefinition : ConsumerDefinition<ScoreChunkConsumer>
{
    private readonly int _concurrency;

    public ScoreChunkConsumerDefinition(IOptions<BatchScoringOptions> options)
    {
        _concurrency = options.Value.ChunkConcurrency;
        EndpointName = options.Value.QueueName(ChunkDispatcher.QueueName);
        ConcurrentMessageLimit = _concurrency;
        ParquetDataset.ConfigureSharedRowGroups(_concurrency);
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ScoreChunkConsumer> consumerConfigurator, IRegistrationContext context)
    {
        // Prefetch no more than we work on: unstarted chunks stay in the queue for other workers.
        endpointConfigurator.PrefetchCount = _concurrency;
        // No message retry here: the scorer retries in place briefly and then hands the chunk to the reconciler,
        // so a long outage never holds a consumer slot (docs/job-failures.md).
    }
}
