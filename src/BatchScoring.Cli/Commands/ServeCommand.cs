using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using BatchScoring.Cli.Errors;
using BatchScoring.Cli.Hosting;

namespace BatchScoring.Cli.Commands;

public static class ServeCommand
{
    public static Command Create()
    {
        var roles = new Option<string>("--roles") { Description = "api, worker, scheduler (comma-separated).", DefaultValueFactory = _ => "api,worker,scheduler" };
        var urls = new Option<string?>("--urls") { Description = $"Where the API listens (default {ServiceHost.DefaultApiUrl})." };
        var migrate = new Option<bool>("--migrate") { Description = "Apply database migrations before starting." };
        var migrateTimeout = CliOptions.Duration("--migrate-timeout", "With --migrate: give up (exit 7) when PostgreSQL does not answer within this time; without it, serve waits for PostgreSQL and RabbitMQ as every role does.");
        var command = new Command("serve", "Run the service against RabbitMQ and PostgreSQL (ConnectionStrings__Postgres, ConnectionStrings__RabbitMq).")
        {
            roles, urls, migrate, migrateTimeout,
        };
        command.SetAction(async (parse, ct) =>
        {
            var verbose = parse.GetValue(CliOptions.Verbose) || ErrorReporter.VerboseFromEnvironment;
            var settings = new ServeSettings(
                ServiceHost.ParseRoles(parse.GetRequiredValue(roles)), parse.GetValue(urls), parse.GetValue(migrate), verbose, parse.GetValue(migrateTimeout));
            await using var app = ServiceHost.Build(settings);
            if (TieredCompilationOn(Environment.GetEnvironmentVariable))
            {
                app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BatchScoring.Serve").LogInformation(
                    "Tiered compilation is on: start serve with DOTNET_TieredCompilation=0 for job and request throughput (the images and deploy/local do; docs/cli.md).");
            }

            await app.StartAsync(ct);
            await app.WaitForShutdownAsync(ct);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>The runtime's setting: the environment overrides the runtimeconfig (ServiceRuntime.props: on, for the commands).</summary>
    public static bool TieredCompilationOn(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return (environment("DOTNET_TieredCompilation") ?? environment("COMPlus_TieredCompilation")) is { } value
            ? value.Trim() != "0"
            : !AppContext.TryGetSwitch("System.Runtime.TieredCompilation", out var on) || on;
    }
}
