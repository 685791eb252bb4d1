using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchScoring.Cli.Errors;
using BatchScoring.Cli.Hosting;
using BatchScoring.Data;
using BatchScoring.Application;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace BatchScoring.Cli.Commands;

/// <summary><c>batchscore migrate</c>: applies the schema migrations, or with <c>--status</c> lists them (schemas/sql/README.md).</summary>
public static class MigrateCommand
{
    public static Command Create()
    {
        var timeout = CliOptions.Duration("--connect-timeout", "How long to keep retrying while PostgreSQL is unreachable (default 30s).");
        var status = new Option<bool>("--status")
        {
            Description = "List every migration (applied or pending, when, checksum ok or changed) without changing anything; exit 0 when the schema is up to date, 1 when a migration is pending or was changed.",
        };
        var json = CliOptions.Json("Machine-readable output: the migrations applied, or with --status every migration.");
        var command = new Command("migrate", "Create or upgrade the PostgreSQL schema (ConnectionStrings__Postgres).") { timeout, status, json };
        command.SetAction(async (parse, ct) =>
        {
            var configuration = new ConfigurationBuilder()
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            var connectionString = DatabaseWait.RequirePostgres(configuration.GetConnectionString(ConnectionNames.Postgres));
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            var budget = parse.GetValue(timeout) ?? TimeSpan.FromSeconds(30);
            void Warn(string message) => Console.Error.WriteLine(SecretRedactor.Current.Redact($"warning: {message}"));
            if (parse.GetValue(status))
            {
                var migrations = await DatabaseWait.RetryAsync(c => DatabaseMigrator.StatusAsync(dataSource, c), budget, Warn, ct);
                return Report(migrations, parse.GetValue(json));
            }

            var applied = await DatabaseWait.MigrateAsync(dataSource, budget, Warn, ct);
            Console.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(new { applied = applied.Select(m => new { m.Version, m.Name, File = m.FileName }) }, JsonOptions)
                : applied.Count == 0 ? "Schema is up to date." : $"Applied: {string.Join(", ", applied.Select(m => $"{m.Version:D3} {m.Name}"))}");
            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static int Report(IReadOnlyList<MigrationStatus> migrations, bool json)
    {
        var pending = migrations.Where(m => m.State == MigrationState.Pending).ToArray();
        var changed = migrations.Where(m => m.Checksum == ChecksumState.Changed).ToArray();
        Console.WriteLine(json ? Json(migrations, pending.Length == 0 && changed.Length == 0) : Table(migrations));
        if (changed.Length > 0)
        {
            return ErrorReporter.Print(
                ExitCodes.Failed,
                $"{Files(changed)} changed after {(changed.Length == 1 ? "it was" : "they were")} applied: restore {(changed.Length == 1 ? "it" : "them")} and put the change in a new migration (migrate refuses to run until then).");
        }

        if (pending.Length > 0)
        {
            return ErrorReporter.Print(
                ExitCodes.Failed, $"{pending.Length} migration{(pending.Length == 1 ? "" : "s")} pending ({Files(pending)}): run `batchscore migrate`.");
        }

        if (!json)
        {
            Console.WriteLine($"Schema is up to date ({migrations.Count(m => m.State == MigrationState.Applied)} migrations applied).");
        }

        return ExitCodes.Succeeded;
    }

    private static string Files(IEnumerable<MigrationStatus> migrations) => string.Join(", ", migrations.Select(FileName));

    private static string FileName(MigrationStatus m) => new SchemaMigration(m.Version, m.Name, "").FileName;

    private static string Table(IReadOnlyList<MigrationStatus> migrations)
    {
        var rows = migrations.Select(m => new[]
        {
            m.Version.ToString("D3", CultureInfo.InvariantCulture),
            FileName(m),
            m.State == MigrationState.Unknown ? "applied (not in this version)" : m.State.ToString().ToLowerInvariant(),
            m.AppliedAt is { } at ? at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-",
            m.Checksum switch
            {
                ChecksumState.Ok => "ok",
                ChecksumState.Changed => "CHANGED",
                ChecksumState.NotRecorded => "not recorded (next migrate records it)",
                _ => "-",
            },
        }).Prepend(["VERSION", "FILE", "STATE", "APPLIED AT (UTC)", "CHECKSUM"]).ToArray();
        var widths = Enumerable.Range(0, 5).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in rows)
        {
            text.AppendLine(string.Join("  ", row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        }

        return text.ToString().TrimEnd();
    }

    private static string Json(IReadOnlyList<MigrationStatus> migrations, bool upToDate) =>
        JsonSerializer.Serialize(
            new
            {
                upToDate,
                migrations = migrations.Select(m => new
                {
                    m.Version,
                    m.Name,
                    File = FileName(m),
                    m.State,
                    m.AppliedAt,
                    m.Checksum,
                    Sha256 = m.FileChecksum,
                    RecordedSha256 = m.RecordedChecksum,
                }),
            },
            JsonOptions);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}
