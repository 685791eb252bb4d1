using BatchScoring.Application;
using BatchScoring.Application.Challengers;
using BatchScoring.Application.Drift;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Worker.Consumers;
using BatchScoring.Worker.Drift;
using BatchScoring.Worker.Requests;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.ServiceDefaults;

public static class BatchScoringHostExtensions
{
    /// <summary>
    /// Options, PostgreSQL data source and the job services every role uses.
    /// Configuration: <c>ConnectionStrings:Postgres</c> (Npgsql connection string) and the <c>BatchScoring</c> section.
    /// </summary>
    public static IHostApplicationBuilder AddBatchScoringCore(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddValidatedOptions<BatchScoringOptions>(BatchScoringOptions.SectionName, o => o.Validate());

        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        builder.Services.AddSingleton(_ => new NpgsqlDataSourceBuilder(postgres).Build());
        builder.Services.AddSingleton(services => services.GetRequiredService<IOptions<BatchScoringOptions>>().Value.GetStorageRoots());
        // First hosted service: the others wait on its gate for PostgreSQL and RabbitMQ.
        builder.Services.AddSingleton<DependencyGate>();
        builder.Services.AddHostedService<DependencyWaiter>();
        builder.Services.AddSingleton<JobStore>();
        builder.Services.AddSingleton<ModelStore>();
        builder.Services.AddSingleton<ModelCache>();
        builder.Services.AddSingleton<ModelRegistry>();
        builder.Services.AddSingleton<CanaryStore>();
        builder.Services.AddSingleton<CanaryAliases>();
        builder.Services.AddValidatedOptions<DriftOptions>(DriftOptions.SectionName, o => o.Validate());
        builder.Services.AddSingleton<DriftSampleRecorder>();
        builder.Services.AddSingleton<DriftStore>();
        builder.Services.AddSingleton<ReferenceProfiler>();
        builder.Services.AddSingleton<DriftAuditor>();
        builder.Services.AddDriftWebhook();
        builder.AddPerformance();
        builder.Services.AddSingleton<DispatchRecovery>();
        builder.Services.AddSingleton<JobPlanCache>();
        // BatchScoring:Sources:<name> = Npgsql connection string of a database that SQL inputs may read.
        builder.Services.AddSingleton(services => new NamedSources(services.GetRequiredService<IConfiguration>().GetSection(NamedSources.SectionName)
            .GetChildren().Where(c => !string.IsNullOrWhiteSpace(c.Value)).ToDictionary(c => c.Key, c => c.Value!)));
        builder.Services.AddSingleton<SqlInputs>();
        builder.Services.AddScoped<JobSubmitter>();
        builder.Services.AddScoped<ChunkDispatcher>();
        builder.Services.AddScoped<JobFinisher>();
        builder.Services.AddSingleton<ChallengerStore>();
        builder.Services.AddSingleton<ChallengerComparisons>();
        builder.Services.AddScoped<ChunkScorer>();
        return builder;
    }

    /// <summary>
    /// MassTransit on RabbitMQ (<c>ConnectionStrings:RabbitMq</c>, an AMQP URI). With <paramref name="worker"/>,
    /// this process also consumes chunk and submission messages.
    /// </summary>
    public static IHostApplicationBuilder AddBatchScoringBus(this IHostApplicationBuilder builder, bool worker)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var rabbit = new Uri(builder.Configuration.GetRequiredConnectionString(ConnectionNames.RabbitMq));
        if (worker)
        {
            // Request mode consumes score-requests with the RabbitMQ client itself (see RequestQueueListener).
            builder.Services.AddRequestModeServices();
            builder.Services.AddHostedService(services => services.GetRequiredService<DriftSampleRecorder>());
        }

        var queueOptions = builder.Configuration.GetSection(BatchScoringOptions.SectionName).Get<BatchScoringOptions>() ?? new BatchScoringOptions();
        var quorum = queueOptions.UseQuorumQueues;
        builder.Services.AddHostedService<ChunkQueueTopology>();
        builder.Services.AddMassTransit(x =>
        {
            x.DisableUsageTelemetry();
            if (quorum)
            {
                x.AddConfigureEndpointsCallback((_, endpoint) =>
                {
                    if (endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
                    {
                        rabbit.SetQuorumQueue();
                        if (queueOptions.QueueDeliveryLimit > 0)
                        {
                            // The same arguments as ChunkQueueTopology's declaration: whichever role declares the queue first sets them.
                            rabbit.SetQueueArgument(BatchScoringOptions.DeliveryLimitArgument, queueOptions.QueueDeliveryLimit);
                        }
                    }
                });
            }

            if (worker)
            {
                x.AddConsumer<ScoreChunkConsumer, ScoreChunkConsumerDefinition>();
                x.AddConsumer<SubmitScoringJobConsumer, SubmitScoringJobConsumerDefinition>();
            }

            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(rabbit, h => ConfigureRabbitMqHost(h, rabbit));

                // Messages carry null members as null, like the HTTP API (schemas/README.md: null policy).
                cfg.ConfigureJsonSerializerOptions(o =>
                {
                    o.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never;
                    return o;
                });
                BrokerReconnect.Cap(cfg);
                cfg.ConfigureEndpoints(context);
            });
        });
        builder.Services.Configure<MassTransitHostOptions>(o =>
        {
            // The bus connects in the background (retrying while RabbitMQ is down); BusStartWait waits for it when the
            // broker answered at start-up, so a host that starts normally still has its endpoints bound when it is up.
            o.WaitUntilStarted = false;
            o.StopTimeout = TimeSpan.FromSeconds(30);
            o.ConsumerStopTimeout = TimeSpan.FromSeconds(20);
        });
        builder.Services.AddHostedService<BusStartWait>();
        builder.Services.AddSingleton<BrokerConnectionMonitor>();
        builder.Services.AddSingleton<IBrokerConnectionWatch>(services => services.GetRequiredService<BrokerConnectionMonitor>());
        builder.Services.AddSingleton<BrokerReachability>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IChunkQueueProbe, ChunkQueueProbe>();
        if (!worker)
        {
            // No receive endpoints here: the bus's health cannot tell that RabbitMQ is down (BrokerReachability).
            builder.Services.AddHostedService(services => services.GetRequiredService<BrokerConnectionMonitor>());
        }

        return builder;
    }

    /// <summary>
    /// What the URI does not say. MassTransit reads host, port, user, password and virtual host from it, and turns TLS
    /// on for port 5671 (the default of <c>amqps</c>); an <c>amqps</c> URI on another port gets TLS here too.
    /// </summary>
    public static void ConfigureRabbitMqHost(IRabbitMqHostConfigurator host, Uri uri)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(uri);
        if (uri.Scheme is "amqps" or "rabbitmqs")
        {
            host.UseSsl();
        }

        host.RequestedConnectionTimeout(TimeSpan.FromSeconds(5));
    }
}

/// <summary>The start-up line about path confinement, like the one about API keys.</summary>
public static class StorageRootsNotice
{
    public static void Log(ILogger logger, StorageRoots roots)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(roots);
        if (roots.IsConfined)
        {
            logger.LogInformation("Input, output and model paths are confined to {Roots} ({Setting})", string.Join(", ", roots.Roots), StorageRoots.SettingName);
        }
        else
        {
            logger.LogWarning(
                "Paths are not confined: jobs may read and write any file this process can. Set {Setting} (e.g. {Variable}=/data) to confine them.",
                StorageRoots.SettingName,
                StorageRoots.SettingName.Replace(":", "__", StringComparison.Ordinal) + "__0");
        }
    }
}
