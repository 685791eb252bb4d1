using BatchScoring.Api;
using BatchScoring.Cli.Errors;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Application;
using BatchScoring.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Npgsql;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Cli.Hosting;

[Flags]
public enum ServiceRoles
{
    None = 0,
    Api = 1,
    Worker = 2,
    Scheduler = 4,
    All = Api | Worker | Scheduler,
}

/// <param name="Verbose">Full exceptions (stack traces) in the log; otherwise one line per error.</param>
/// <param name="MigrateTimeout">With <paramref name="Migrate"/>: how long to wait for PostgreSQL to accept connections.</param>
public sealed record ServeSettings(ServiceRoles Roles, string? Urls, bool Migrate, bool Verbose = false, TimeSpan? MigrateTimeout = null);

/// <summary>The `serve` process: API, worker and scheduler roles composed from the same registrations.</summary>
public static class ServiceHost
{
    public const string DefaultApiUrl = "http://127.0.0.1:5080";

    public static ServiceRoles ParseRoles(string text)
    {
        var roles = ServiceRoles.None;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            roles |= part.ToLowerInvariant() switch
            {
                "api" => ServiceRoles.Api,
                "worker" => ServiceRoles.Worker,
                "scheduler" => ServiceRoles.Scheduler,
                "all" => ServiceRoles.All,
                _ => throw new CliException(ExitCodes.Usage, $"unknown role '{part}' in --roles: use api, worker, scheduler (comma-separated)."),
            };
        }

        return roles == ServiceRoles.None ? throw new CliException(ExitCodes.Usage, "--roles names no role: use api, worker, scheduler (comma-separated).") : roles;
    }

    public static WebApplication Build(ServeSettings settings, string[]? args = null, Action<IConfigurationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args ?? [] });
        configure?.Invoke(builder.Configuration);
        DatabaseWait.RequirePostgres(builder.Configuration.GetConnectionString(ConnectionNames.Postgres));
        DatabaseWait.RequireRabbitMq(builder.Configuration.GetConnectionString(ConnectionNames.RabbitMq));
        var api = settings.Roles.HasFlag(ServiceRoles.Api);
        builder.AddServiceLogging(settings.Verbose);
        builder.AddServiceDefaults();
        builder.AddBatchScoringCore();
        // Applied once PostgreSQL answers (DependencyWaiter), so a role started before its database waits instead of exiting.
        // (with --migrate-timeout the migration runs once, bounded, at the end of Build instead)
        builder.Services.Configure<StartupOptions>(o => o.Migrate = settings.Migrate && settings.MigrateTimeout is null);
        var worker = settings.Roles.HasFlag(ServiceRoles.Worker);
        builder.AddBatchScoringBus(worker);
        if (api || worker)
        {
            // Only the roles on a job's path (submit, status, chunks) take its one-time costs at start-up.
            builder.Services.AddHostedService<JobPathWarmUp>();
            builder.Services.Configure<JobPathWarmUpOptions>(o => o.ScoreSampleChunk = worker);
        }

        if (settings.Roles.HasFlag(ServiceRoles.Scheduler))
        {
            builder.AddScheduler();
        }
        else if (api)
        {
            builder.AddScheduleStore(); // /api/schedules writes to the schedulers' store without firing anything itself
        }

        if (api)
        {
            builder.AddStatusApi();
        }

        var keys = builder.Configuration.GetSection(ApiKeyOptions.SectionName).Get<ApiKeyOptions>() ?? new ApiKeyOptions();
        var urls = ListenUrls(settings.Urls ?? builder.Configuration["Urls"], api, keys);
        builder.WebHost.UseUrls(urls);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BatchScoring");
        if (api)
        {
            app.MapStatusApi();
            logger.LogInformation(keys.LocalOnly
                ? "No API key configured: local-only mode, listening on loopback only ({Urls}). Set BatchScoring__Api__Keys__0 to serve other hosts."
                : "API keys required for /api routes; listening on {Urls}", urls);
        }

        logger.LogInformation("Roles: {Roles}", settings.Roles);
        StorageRootsNotice.Log(logger, app.Services.GetRequiredService<StorageRoots>());
        if (settings.Migrate && settings.MigrateTimeout is { } migrateTimeout)
        {
            // An explicit --migrate-timeout bounds the wait: give up (exit 7) instead of waiting for PostgreSQL as roles do.
            var dataSource = app.Services.GetRequiredService<NpgsqlDataSource>();
            DatabaseWait.MigrateAsync(dataSource, migrateTimeout, m => logger.LogWarning("{Problem}", m), CancellationToken.None).GetAwaiter().GetResult();
        }

        return app;
    }

    /// <summary>
    /// One line per event, secrets redacted; full exceptions only with <paramref name="verbose"/>. Text by default; JSON
    /// (with scopes, trace and span ids) with <c>BatchScoring:LogFormat=json</c> or <c>Logging:Console:FormatterName=json</c>.
    /// </summary>
    private static void AddServiceLogging(this WebApplicationBuilder builder, bool verbose)
    {
        var redactor = SecretRedactor.FromConfiguration(builder.Configuration);
        SecretRedactor.Current = redactor;
        var json = string.Equals(builder.Configuration[LogFormatKey], "json", StringComparison.OrdinalIgnoreCase)
            || string.Equals(builder.Configuration["Logging:Console:FormatterName"], "json", StringComparison.OrdinalIgnoreCase);
        builder.Logging.AddConsole(o => o.FormatterName = json ? JsonServiceLogFormatter.FormatterName : ServiceLogFormatter.FormatterName);
        void Configure(ServiceLogFormatterOptions o)
        {
            o.TimestampFormat = "HH:mm:ss ";
            o.IncludeScopes = true;
            o.Verbose = verbose;
            o.Redactor = redactor;
        }

        builder.Logging.AddConsoleFormatter<ServiceLogFormatter, ServiceLogFormatterOptions>(Configure);
        builder.Logging.AddConsoleFormatter<JsonServiceLogFormatter, ServiceLogFormatterOptions>(Configure);
    }

    /// <summary><c>text</c> (default) or <c>json</c>: the console log format of <c>serve</c>.</summary>
    public const string LogFormatKey = "BatchScoring:LogFormat";

    /// <summary>Where to listen: the API's default address, or any free loopback port for roles that only serve /metrics and /health.</summary>
    private static string ListenUrls(string? configured, bool api, ApiKeyOptions keys)
    {
        var urls = configured ?? (api ? DefaultApiUrl : "http://127.0.0.1:0");
        // No key configured: never listen beyond loopback.
        return api && keys.LocalOnly ? string.Join(';', urls.Split(';').Select(ToLoopback)) : urls;
    }

    private static string ToLoopback(string url)
    {
        var uri = new Uri(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal));
        return uri.IsLoopback ? url : $"{uri.Scheme}://127.0.0.1:{uri.Port}";
    }
}
