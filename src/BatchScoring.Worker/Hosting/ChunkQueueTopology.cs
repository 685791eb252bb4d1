using BatchScoring.Application;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace BatchScoring.Worker.Hosting;

/// <summary>
/// Declares <c>score-chunks</c> (queue of its configured type, plus the fanout exchange of the same name bound to it, as
/// MassTransit names them) when any role starts: chunk messages are sent to the exchange, so the queue must exist
/// before the first job is dispatched, even when no worker has started yet.
/// </summary>
internal sealed class ChunkQueueTopology(IOptions<BatchScoringOptions> options, IConfiguration configuration) : IHostedService
{
    public static Dictionary<string, object?>? QueueArguments(BatchScoringOptions options) =>
        options.UseQuorumQueues ? new Dictionary<string, object?> { ["x-queue-type"] = BatchScoringOptions.QuorumQueues } : null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = options.Value.QueueName(ChunkDispatcher.QueueName);
        var factory = new ConnectionFactory
        {
            Uri = new Uri(configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq)),
            ClientProvidedName = $"batchscoring-topology:{Environment.MachineName}",
        };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: QueueArguments(options.Value), cancellationToken: cancellationToken);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: cancellationToken);
        await channel.CloseAsync(cancellationToken);
        await connection.CloseAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
