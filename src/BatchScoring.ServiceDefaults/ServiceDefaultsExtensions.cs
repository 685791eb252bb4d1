using BatchScoring.Application;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;

namespace BatchScoring.ServiceDefaults;

/// <summary>What every role has: metrics on <c>/metrics</c>, liveness and readiness on <c>/health/*</c>.</summary>
public static class ServiceDefaultsExtensions
{
    public const string MetricsPath = "/metrics";

    /// <summary>
    /// Telemetry and health checks. Metrics: every instrument on the <see cref="ScoringMetrics.MeterName"/> meter, in
    /// Prometheus text under its own name (no scope label, no <c>target_info</c>, no runtime or ASP.NET series), read
    /// fresh on each scrape (docs/decisions/ADR-008). Traces: OTLP when configured (<see cref="TracingHostExtensions"/>).
    /// </summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(ScoringMetrics.MeterName)
            .AddPrometheusExporter(o =>
            {
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
                o.ScrapeResponseCacheDurationMilliseconds = 0;
            }));
        // After OpenTelemetry's own hosted service, which starts the meter provider: a measurement before it is lost.
        builder.Services.AddHostedService<UnlabelledSeries>();
        builder.AddTracing();
        builder.Services.AddReadinessChecks();
        return builder;
    }

    /// <summary><c>/metrics</c>, <c>/health/live</c> (the process answers) and <c>/health/ready</c> (the checks tagged ready).</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        // The host's checks (start-up, PostgreSQL, RabbitMQ) and MassTransit's bus check, all tagged "ready".
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadinessChecks.ReadyTag) });
        return app;
    }
}

/// <summary>Exports the unlabelled counters as 0 from start-up (<see cref="ScoringMetrics.EnsureRegistered"/>).</summary>
internal sealed class UnlabelledSeries : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        ScoringMetrics.EnsureRegistered();
        OperationsMetrics.EnsureRegistered();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
