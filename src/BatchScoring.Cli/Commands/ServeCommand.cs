using System.CommandLine;
using Microsoft.Extensions.Hosting;
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
        var command = new Command("serve", "Run the service against RabbitMQ and PostgreSQL (ConnectionStrings__Postgres, ConnectionStrings__RabbitMq).")
        {
            roles, urls, migrate,
        };
        command.SetAction(async (parse, ct) =>
        {
            var app = ServiceHost.Build(new ServeSettings(ServiceHost.ParseRoles(parse.GetRequiredValue(roles)), parse.GetValue(urls), parse.GetValue(migrate)));
            await app.StartAsync(ct);
            await app.WaitForShutdownAsync(ct);
            return 0;
        });
        return command;
    }
}

public static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Create or upgrade the PostgreSQL schema (ConnectionStrings__Postgres).");
        command.SetAction(async (parse, ct) =>
        {
            var configuration = new ConfigurationBuilder()
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            await using var dataSource = NpgsqlDataSource.Create(configuration.GetRequiredConnectionString(ConnectionNames.Postgres));
            var applied = await DatabaseMigrator.MigrateAsync(dataSource, ct);
            Console.WriteLine(applied.Count == 0 ? "Schema is up to date." : $"Applied: {string.Join(", ", applied.Select(m => $"{m.Version:D3} {m.Name}"))}");
            return 0;
        });
        return command;
    }
}
