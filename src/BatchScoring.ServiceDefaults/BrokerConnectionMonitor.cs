using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using BatchScoring.Application;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// One plain RabbitMQ connection, kept open with the client's automatic recovery, whose state says whether the broker is
/// reachable (<see cref="BrokerReachability"/>). Started only in processes without receive endpoints, whose MassTransit
/// bus cannot tell; elsewhere <see cref="IsOpen"/> is null.
/// </summary>
internal sealed class BrokerConnectionMonitor(IConfiguration configuration, DependencyGate gate, ILogger<BrokerConnectionMonitor> logger)
    : IBrokerConnectionWatch, IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(2);

    private readonly CancellationTokenSource _stopping = new();
    private volatile IConnection? _connection;
    private volatile bool _started;
    private Task? _connecting;

    public bool? IsOpen => _started ? _connection?.IsOpen == true : null;

    public string? LastError { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _started = true;
        var factory = new ConnectionFactory
        {
            Uri = new Uri(configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq)),
            AutomaticRecoveryEnabled = true,
            // Nothing is declared on this connection: there is no topology to recover.
            TopologyRecoveryEnabled = false,
            NetworkRecoveryInterval = RetryDelay,
            // A broker stopped or killed closes the socket at once; heartbeats catch a network that silently drops.
            RequestedHeartbeat = TimeSpan.FromSeconds(10),
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
            ClientProvidedName = $"batchscoring-health:{Environment.MachineName}",
        };

        // Connected before the host reports started when the broker answers, so readiness does not flicker at start-up.
        if (gate.IsReady && await TryConnectAsync(factory, cancellationToken))
        {
            return;
        }

        _connecting = Task.Run(() => ConnectUntilOpenAsync(factory, _stopping.Token), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_connecting is not null)
        {
            await _connecting.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is { } connection)
        {
            await connection.DisposeAsync();
        }

        _stopping.Dispose();
    }

    private async Task ConnectUntilOpenAsync(ConnectionFactory factory, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested && !await TryConnectAsync(factory, cancellationToken))
        {
            await Task.Delay(RetryDelay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task<bool> TryConnectAsync(ConnectionFactory factory, CancellationToken cancellationToken)
    {
        try
        {
            _connection = await factory.CreateConnectionAsync(cancellationToken);
            LastError = null;
            return true;
        }
        catch (Exception ex) when (ex is BrokerUnreachableException or IOException or SocketException or TimeoutException or OperationInterruptedException)
        {
            if (LastError is null)
            {
                logger.LogWarning("RabbitMQ is unreachable ({Error}); /health/ready reports not ready until it answers", ex.Message);
            }

            LastError = ex.Message;
            return false;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
