using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Worker.Consumers;
using BatchScoring.Worker.Drift;
using BatchScoring.Worker.Requests;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Worker.Hosting;

/// <summary>Names of the connection strings (ConnectionStrings:Postgres, ConnectionStrings:RabbitMq).</summary>
public static class ConnectionNames
{
    public const string Postgres = "Postgres";
    public const string RabbitMq = "RabbitMq";
}

public static class BatchScoringHostExtensions
{
    /// <summary>
    /// Options, PostgreSQL data source and the job services every role uses.
    /// Configuration: <c>ConnectionStrings:Postgres</c> (Npgsql connection string) and the <c>BatchScoring</c> section.
    /// </summary>
    public static IHostApplicationBuilder AddBatchScoringCore(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<BatchScoringOptions>()
            .BindConfiguration(BatchScoringOptions.SectionName)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<BatchScoringOptions>>(new OptionsValidator<BatchScoringOptions>(o => o.Validate()));

        var postgres = builder.Configuration.GetRequiredConnectionString(ConnectionNames.Postgres);
        builder.Services.AddSingleton(_ => new NpgsqlDataSourceBuilder(postgres).Build());
        builder.Services.AddSingleton(services => services.GetRequiredService<IOptions<BatchScoringOptions>>().Value.GetStorageRoots());
        // First hosted service: the others wait on its gate for PostgreSQL and RabbitMQ.
        builder.Services.AddSingleton<DependencyGate>();
        builder.Services.AddHostedService<DependencyWaiter>();
        builder.Services.AddReadinessChecks();
        builder.Services.AddSingleton<JobStore>();
        builder.Services.AddSingleton<ModelStore>();
        builder.Services.AddSingleton<ModelCache>();
        builder.Services.AddSingleton<ModelRegistry>();
        builder.Services.AddOptions<DriftOptions>()
            .BindConfiguration(DriftOptions.SectionName)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DriftOptions>>(new OptionsValidator<DriftOptions>(o => o.Validate()));
        builder.Services.AddSingleton<DriftSampleRecorder>();
        builder.Services.AddSingleton<DriftStore>();
        builder.Services.AddSingleton<ReferenceProfiler>();
        builder.Services.AddSingleton<DriftAuditor>();
        builder.Services.AddDriftWebhook();
        builder.AddPerformance();
        builder.Services.AddSingleton<DispatchRecovery>();
        builder.Services.AddSingleton<JobPlanCache>();
        builder.Services.AddScoped<JobSubmitter>();
        builder.Services.AddScoped<ChunkDispatcher>();
        builder.Services.AddScoped<JobFinisher>();
        builder.Services.AddScoped<ChunkScorer>();
        ScoringMetrics.EnsureRegistered();
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

        var quorum = (builder.Configuration.GetSection(BatchScoringOptions.SectionName).Get<BatchScoringOptions>() ?? new BatchScoringOptions()).UseQuorumQueues;
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
                cfg.Host(rabbit.Host, (ushort)(rabbit.IsDefaultPort || rabbit.Port < 0 ? 5672 : rabbit.Port), VirtualHost(rabbit), h =>
                {
                    var (user, password) = Credentials(rabbit);
                    h.Username(user);
                    h.Password(password);
                    h.RequestedConnectionTimeout(TimeSpan.FromSeconds(5));
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
        return builder;
    }

    public static string GetRequiredConnectionString(this IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"Connection string '{name}' is not configured: set ConnectionStrings__{name} (environment) or ConnectionStrings:{name} (appsettings).");

    private static string VirtualHost(Uri uri)
    {
        var path = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        return path.Length == 0 ? "/" : path;
    }

    private static (string User, string Password) Credentials(Uri uri)
    {
        if (string.IsNullOrEmpty(uri.UserInfo))
        {
            return ("guest", "guest");
        }

        var parts = uri.UserInfo.Split(':', 2);
        return (Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "");
    }
}

/// <summary>Start-up validation by an options class's own <c>Validate()</c>, which names each bad setting.</summary>
internal sealed class OptionsValidator<TOptions>(Func<TOptions, IEnumerable<string>> validate) : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var failures = validate(options).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
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
