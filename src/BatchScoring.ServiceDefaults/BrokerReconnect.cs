using BatchScoring.Application;
using System.Reflection;
using MassTransit;
using MassTransit.RabbitMqTransport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.ServiceDefaults;

/// <summary>
/// Caps MassTransit's reconnect backoff. MassTransit 8's RabbitMQ transport retries a lost connection exponentially
/// from 3 s up to 30 s (plus jitter), and the retry state of a receive endpoint is never reset, so after one outage every
/// later one waits up to ~36 s: a worker took ~30 s after the broker was back to start the next job. The policy is
/// fixed in the host configuration's constructor with no setting, so it is replaced here (same exceptions handled,
/// 0.5 s doubling to <see cref="MaxDelay"/>, never giving up). If a MassTransit upgrade renames what this relies on,
/// start-up fails with this class's message rather than silently keeping the long backoff.
/// </summary>
public static class BrokerReconnect
{
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(2);

    private static readonly IRetryPolicy Policy = Retry.CreatePolicy(x =>
    {
        x.Handle<ConnectionException>();
        x.Handle<AlreadyClosedException>();
        x.Handle<EndOfStreamException>();
        x.Handle<OperationInterruptedException>(exception => exception.ChannelShouldBeClosed());
        x.Handle<NotSupportedException>(exception => exception.Message.Contains("Pipelining of requests forbidden", StringComparison.Ordinal));
        x.Ignore<AuthenticationFailureException>();
        x.Exponential(int.MaxValue, TimeSpan.FromMilliseconds(500), MaxDelay, TimeSpan.FromMilliseconds(500));
    });

    public static void Cap(IRabbitMqBusFactoryConfigurator configurator)
    {
        ArgumentNullException.ThrowIfNull(configurator);
        const BindingFlags instance = BindingFlags.Instance | BindingFlags.NonPublic;
        var host = configurator.GetType().GetField("_hostConfiguration", instance)?.GetValue(configurator)
            ?? throw Unsupported("the bus configurator has no _hostConfiguration");
        FieldInfo? backing = null;
        for (var type = host.GetType(); type is not null && backing is null; type = type.BaseType)
        {
            backing = type.GetField("<ReceiveTransportRetryPolicy>k__BackingField", instance);
        }

        (backing ?? throw Unsupported($"{host.GetType().Name} has no ReceiveTransportRetryPolicy field")).SetValue(host, Policy);
    }

    private static InvalidOperationException Unsupported(string what) =>
        new($"Cannot cap MassTransit's RabbitMQ reconnect backoff ({what}); check BrokerReconnect against this MassTransit version.");
}

/// <summary>
/// Runs after MassTransit's hosted service: when the broker answered at start-up, waits (bounded) until the bus is
/// connected, as MassTransit's WaitUntilStarted did; when the broker is down, lets the host start and the bus keep trying.
/// </summary>
internal sealed class BusStartWait(IBusControl bus, DependencyGate gate, ILogger<BusStartWait> logger) : IHostedService
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!gate.IsReady)
        {
            logger.LogWarning("RabbitMQ or PostgreSQL is unreachable: starting without them; /health/ready reports not ready until they answer");
            return;
        }

        var deadline = DateTime.UtcNow + Patience;
        while (bus.CheckHealth().Status != BusHealthStatus.Healthy && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
