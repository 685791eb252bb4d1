using System.CommandLine;
using Microsoft.Extensions.Hosting;
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
            await app.StartAsync(ct);
            await app.WaitForShutdownAsync(ct);
            return ExitCodes.Succeeded;
        });
        return command;
    }
}
