using BatchScoring.Application;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace BatchScoring.ServiceDefaults;

public static class ReadinessChecks
{
    /// <summary>The tag of the checks behind <c>/health/ready</c>.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Readiness of every role: dependencies waited for at start-up, PostgreSQL answering, the bus connected.</summary>
    public static IServiceCollection AddReadinessChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<DependencyGateCheck>("startup", tags: [ReadyTag])
            .AddCheck<PostgresHealthCheck>("postgres", tags: [ReadyTag])
            .AddCheck<BrokerHealthCheck>("rabbitmq", tags: [ReadyTag]);
        return services;
    }
}

internal sealed class DependencyGateCheck(DependencyGate gate) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(gate.IsReady ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"Starting: waiting for {gate.Waiting}"));
}

internal sealed class PostgresHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"PostgreSQL unreachable: {ex.Message}");
        }
    }
}

/// <summary>
/// Whether RabbitMQ is reachable (<see cref="BrokerReachability"/>), stricter than MassTransit's check: with the broker
/// down its endpoints report "stopped", which MassTransit counts as Degraded and ASP.NET answers 200, and a process
/// without endpoints stays Healthy; a role that cannot reach RabbitMQ is not ready.
/// </summary>
internal sealed class BrokerHealthCheck(BrokerReachability broker) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(broker.IsReachable(out var reason)
            ? HealthCheckResult.Healthy(reason)
            : HealthCheckResult.Unhealthy($"RabbitMQ unreachable: {reason}"));
}
