using BatchScoring.Application;
using BatchScoring.Contracts;
using MassTransit;
using Microsoft.Extensions.Options;

namespace BatchScoring.Worker.Consumers;

/// <summary>Scores one chunk per message; the message is acknowledged only after the chunk's transaction committed.</summary>
public sealed class ScoreChunkConsumer(ChunkScorer scorer) : IConsumer<ScoreChunk>
{
    public async Task Consume(ConsumeContext<ScoreChunk> context)
    {
        if (context.SentTime is { } sent)
        {
            ScoringMetrics.QueueWaitSeconds.WithLabels("job").Observe(Math.Max(0, (DateTime.UtcNow - sent).TotalSeconds));
        }

        try
        {
            await scorer.ScoreAsync(context.Message, context.CancellationToken);
        }
        catch (Exception) when (!context.CancellationToken.IsCancellationRequested)
        {
            ScoringMetrics.ChunkFailures.WithLabels("retry").Inc();
            throw;
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
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ScoreChunkConsumer> consumerConfigurator, IRegistrationContext context)
    {
        // Prefetch no more than we work on: unstarted chunks stay in the queue for other workers.
        endpointConfigurator.PrefetchCount = _concurrency;
        // Transient faults (database restart, deadlock) retry in place; the chunk transaction makes retries safe.
        endpointConfigurator.UseMessageRetry(r => r.Intervals(200, 1_000, 5_000, 15_000));
    }
}
