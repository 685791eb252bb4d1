using BatchScoring.IntegrationTests.Infrastructure;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary><c>--json</c> outputs of CLI verbs that talk to PostgreSQL directly, checked against schemas/.</summary>
public sealed class CliContractTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migrate_json_and_migrate_status_json_match_their_schemas_before_and_after()
    {
        var environment = new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = await servers.CreateDatabaseAsync("contract_migrate", Ct) };

        // Empty database: everything pending (nulls for what was never applied), then applied, then nothing left to apply.
        SchemaAssert.Valid("migration-status.schema.json", await CliJsonAsync(environment, 1, "migrate", "--status", "--json"), "migrate --status --json (pending)");
        var applied = await CliJsonAsync(environment, 0, "migrate", "--json");
        SchemaAssert.Valid("migration-applied.schema.json", applied, "migrate --json");
        Assert.NotEqual(0, System.Text.Json.JsonDocument.Parse(applied).RootElement.GetProperty("applied").GetArrayLength());
        SchemaAssert.Valid("migration-status.schema.json", await CliJsonAsync(environment, 0, "migrate", "--status", "--json"), "migrate --status --json (up to date)");
        SchemaAssert.Valid("migration-applied.schema.json", await CliJsonAsync(environment, 0, "migrate", "--json"), "migrate --json (nothing to apply)");
    }

    private static async Task<string> CliJsonAsync(Dictionary<string, string?> environment, int exit, params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(environment, Ct, args);
        Assert.True(code == exit, $"batchscore {string.Join(' ', args)} exited {code}:\n{stdout}{stderr}");
        return stdout;
    }
}
