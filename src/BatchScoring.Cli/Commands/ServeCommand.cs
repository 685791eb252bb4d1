using System.CommandLine;
using Microsoft.Extensions.Hosting;
using BatchScoring.Cli.Errors;
using BatchScoring.Cli.Hosting;
using BatchScoring.Data;
using BatchScoring.Worker.Hosting;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace BatchScoring.Cli.Commands;

public static class ServeCommand
{
    public static Command Create()
    {
        var roles = new Option<string>("--roles") { Description = "api, worker, scheduler (comma-separated).", DefaultValueFactory = _ => "api,worker,scheduler" };
        var urls = new Option<string?>("--urls") { Description = $"Where the API listens (default {ServiceHost.DefaultApiUrl})." };
        var migrate = new Option<bool>("--migrate") { Description = "Apply database migrations before starting." };
        var migrateTimeout = CliOptions.Duration("--migrate-timeout", $"With --migrate: how long to wait for PostgreSQL (default {ServiceHost.DefaultMigrateTimeout.TotalSeconds:N0}s).");
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

public static class MigrateCommand
{
    public static Command Create()
    {
        var timeout = CliOptions.Duration("--connect-timeout", "How long to keep retrying while PostgreSQL is unreachable (default 30s).");
        var command = new Command("migrate", "Create or upgrade the PostgreSQL schema (ConnectionStrings__Postgres).") { timeout };
        command.SetAction(async (parse, ct) =>
        {
            var configuration = new ConfigurationBuilder()
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            var connectionString = DatabaseWait.RequirePostgres(configuration.GetConnectionString(ConnectionNames.Postgres));
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            var applied = await DatabaseWait.MigrateAsync(
                dataSource, parse.GetValue(timeout) ?? TimeSpan.FromSeconds(30), m => Console.Error.WriteLine(SecretRedactor.Current.Redact($"warning: {m}")), ct);
            Console.WriteLine(applied.Count == 0 ? "Schema is up to date." : $"Applied: {string.Join(", ", applied.Select(m => $"{m.Version:D3} {m.Name}"))}");
            return ExitCodes.Succeeded;
        });
        return command;
    }
}
