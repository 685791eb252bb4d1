using System.Net.Sockets;
using BatchScoring.Application;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// A passive declare of the chunk queue on a connection of its own, opened at the first question (the status page's) and
/// kept with the client's automatic recovery. Answers are reused for <see cref="CacheFor"/>, so several pages polling
/// cost the broker one declare per interval. A queue that does not exist yet (no worker ever started) has no consumers
/// and no messages.
/// </summary>
internal sealed class ChunkQueueProbe(IConfiguration configuration, IOptions<BatchScoringOptions> options, TimeProvider clock)
    : IChunkQueueProbe, IAsyncDisposable
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(2);

    private const ushort NotFound = 404;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    private ChunkQueueReading? _last;
    private DateTimeOffset _lastAt;

    public async Task<ChunkQueueReading> ReadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is { } cached && clock.GetUtcNow() - _lastAt < CacheFor)
            {
                return cached;
            }

            _last = await AskAsync(cancellationToken);
            _lastAt = clock.GetUtcNow();
            return _last;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is { } connection)
        {
            await connection.DisposeAsync();
        }

        _gate.Dispose();
    }

    private async Task<ChunkQueueReading> AskAsync(CancellationToken cancellationToken)
    {
        var queue = options.Value.QueueName(ChunkDispatcher.QueueName);
        try
        {
            _connection ??= await new ConnectionFactory
            {
                Uri = new Uri(configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq)),
                AutomaticRecoveryEnabled = true,
                TopologyRecoveryEnabled = false,
                RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                ClientProvidedName = $"batchscoring-status:{Environment.MachineName}",
            }.CreateConnectionAsync(cancellationToken);
            await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
            var declared = await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
            return new ChunkQueueReading(new ChunkQueueState(queue, declared.MessageCount, declared.ConsumerCount), null);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == NotFound)
        {
            return new ChunkQueueReading(new ChunkQueueState(queue, 0, 0), null);
        }
        catch (Exception ex) when (ex is BrokerUnreachableException or AlreadyClosedException or OperationInterruptedException or IOException or SocketException or TimeoutException)
        {
            return new ChunkQueueReading(null, $"RabbitMQ could not be asked about {queue}: {ex.Message}");
        }
    }
}
