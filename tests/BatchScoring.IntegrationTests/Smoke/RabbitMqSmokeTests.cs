using System.Threading.Channels;
using BatchScoring.IntegrationTests.Infrastructure;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace BatchScoring.IntegrationTests.Smoke;

/// <summary>A message only this smoke test sends. MassTransit message types must live in a namespace.</summary>
public sealed record SmokePing(Guid Id, string Text, long Number, decimal Amount, DateTime CreatedUtc);

/// <summary>Forwards every received <see cref="SmokePing"/> to the test.</summary>
public sealed class SmokePingConsumer(Channel<SmokePing> received) : IConsumer<SmokePing>
{
    public async Task Consume(ConsumeContext<SmokePing> context) =>
        await received.Writer.WriteAsync(context.Message, context.CancellationToken);
}

public sealed class RabbitMqSmokeTests(ServerFixture servers)
{
    [Fact]
    public async Task Published_message_is_consumed_through_MassTransit_on_the_real_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        var queue = servers.UniqueName("smoke_ping");
        var received = Channel.CreateUnbounded<SmokePing>();

        var services = new ServiceCollection();
        services.AddSingleton(received);
        services.AddMassTransit(x =>
        {
            x.DisableUsageTelemetry();
            x.AddConsumer<SmokePingConsumer>();
            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(new Uri(servers.RabbitMqUri));
                cfg.ReceiveEndpoint(queue, e =>
                {
                    // Throw-away queue: gone when the bus disconnects.
                    e.AutoDelete = true;
                    e.Durable = false;
                    e.ConfigureConsumer<SmokePingConsumer>(context);
                });
            });
        });

        await using var provider = services.BuildServiceProvider(validateScopes: true);
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(ct);
        try
        {
            var sent = new SmokePing(
                Guid.NewGuid(),
                "héllo, batch scoring ✓",
                long.MaxValue - 7,
                12345.6789m,
                new DateTime(2026, 2, 3, 4, 5, 6, 789, DateTimeKind.Utc));

            await bus.Publish(sent, ct);

            // Publishing goes to the SmokePing exchange, which every concurrently running copy of this
            // test binds to, so skip pings sent by others and wait for ours.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            SmokePing got;
            do
            {
                got = await received.Reader.ReadAsync(timeout.Token);
            }
            while (got.Id != sent.Id);

            Assert.Equal(sent, got);
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }
}
