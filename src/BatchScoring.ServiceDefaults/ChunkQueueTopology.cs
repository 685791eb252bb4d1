using BatchScoring.Application;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// Declares <c>score-chunks</c> (queue of its configured type, plus the fanout exchange of the same name bound to it, as
/// MassTransit names them) when any role starts: chunk messages are sent to the exchange, so the queue must exist
/// before the first job is dispatched, even when no worker has started yet. While RabbitMQ is unreachable at start-up
/// this waits (in the background) for the <see cref="DependencyGate"/> and retries, instead of failing the start.
/// </summary>
internal sealed class ChunkQueueTopology(
    IOptions<BatchScoringOptions> options, IConfiguration configuration, DependencyGate gate, ILogger<ChunkQueueTopology> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _pending;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (gate.IsReady)
        {
            try
            {
                await DeclareAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (IsUnreachable(ex))
            {
                logger.LogWarning("Declaring {Queue} failed ({Error}); retrying in the background", ChunkDispatcher.QueueName, ex.Message);
            }
        }

        _pending = Task.Run(() => DeclareWhenReachableAsync(_stopping.Token), CancellationToken.None);
    }

    private Task DeclareWhenReachableAsync(CancellationToken cancellationToken) =>
        gate.StartWhenReachableAsync(DeclareAsync, IsUnreachable, (ex, delay) =>
        {
            logger.LogWarning("Declaring {Queue} failed ({Error}); retrying in {Delay:0.#} s", ChunkDispatcher.QueueName, ex.Message, delay.TotalSeconds);
            return Task.CompletedTask;
        }, cancellationToken);

    private static bool IsUnreachable(Exception ex) => ex is BrokerUnreachableException or IOException or OperationInterruptedException or AlreadyClosedException;

    private async Task DeclareAsync(CancellationToken cancellationToken)
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
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: options.Value.QueueArguments(), cancellationToken: cancellationToken);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: cancellationToken);
        await channel.CloseAsync(cancellationToken);
        await connection.CloseAsync(cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_pending is not null)
        {
            await _pending.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public void Dispose() => _stopping.Dispose();
}
