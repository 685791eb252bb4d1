using System.Text.Json;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using Npgsql;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary><c>batchscore migrate</c> and <c>migrate --status</c> as a separate process against a real PostgreSQL.</summary>
public sealed class MigrateCommandTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Status_exits_1_while_pending_0_when_up_to_date_and_1_naming_a_changed_file()
    {
        var database = await servers.CreateDatabaseAsync("cli_migrate", Ct);
        var environment = new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = database };
        var latest = DatabaseMigrator.Migrations[^1];

        var fresh = await CliProcess.RunAsync(environment, Ct, "migrate", "--status");
        CliAssert.OneLineError(1, fresh, $"{DatabaseMigrator.Migrations.Count} migrations pending");
        Assert.Matches($@"{latest.Version:D3}\s+{latest.FileName}\s+pending\s+-\s+-", fresh.Stdout);

        var migrate = await CliProcess.RunAsync(environment, Ct, "migrate");
        Assert.True(migrate.Exit == 0, migrate.Stdout + migrate.Stderr);

        var upToDate = await CliProcess.RunAsync(environment, Ct, "migrate", "--status");
        Assert.True(upToDate.Exit == 0, upToDate.Stdout + upToDate.Stderr);
        Assert.Matches($@"{latest.Version:D3}\s+{latest.FileName}\s+applied\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+ok", upToDate.Stdout);
        Assert.Contains("Schema is up to date", upToDate.Stdout, StringComparison.Ordinal);
        Assert.Empty(upToDate.Stderr);

        var json = await CliProcess.RunAsync(environment, Ct, "migrate", "--status", "--json");
        Assert.Equal(0, json.Exit);
        using (var document = JsonDocument.Parse(json.Stdout))
        {
            Assert.True(document.RootElement.GetProperty("upToDate").GetBoolean());
            var last = document.RootElement.GetProperty("migrations").EnumerateArray().Last();
            Assert.Equal(latest.FileName, last.GetProperty("file").GetString());
            Assert.Equal("applied", last.GetProperty("state").GetString());
            Assert.Equal("ok", last.GetProperty("checksum").GetString());
            Assert.Equal(latest.Checksum, last.GetProperty("sha256").GetString());
        }

        var applyJson = await CliProcess.RunAsync(environment, Ct, "migrate", "--json");
        Assert.True(applyJson.Exit == 0, applyJson.Stdout + applyJson.Stderr);
        using (var document = JsonDocument.Parse(applyJson.Stdout))
        {
            Assert.Equal(0, document.RootElement.GetProperty("applied").GetArrayLength());
        }

        // The database says migration 1 was applied with other content: status and migrate both refuse, naming it.
        await using (var db = NpgsqlDataSource.Create(database))
        await using (var tamper = db.CreateCommand("UPDATE scoring.schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"))
        {
            await tamper.ExecuteNonQueryAsync(Ct);
        }

        var changed = await CliProcess.RunAsync(environment, Ct, "migrate", "--status", "--json");
        CliAssert.OneLineError(1, changed, "001_scoring_core.sql changed after it was applied");
        using (var document = JsonDocument.Parse(changed.Stdout))
        {
            Assert.False(document.RootElement.GetProperty("upToDate").GetBoolean());
            Assert.Equal("changed", document.RootElement.GetProperty("migrations")[0].GetProperty("checksum").GetString());
        }

        CliAssert.OneLineError(1, await CliProcess.RunAsync(environment, Ct, "migrate"), "migration 001_scoring_core.sql was changed after it was applied");
    }
}
