using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary><c>--json</c> outputs of the CLI's migrate, model lifecycle, schedule control, generate and score verbs, checked against schemas/.</summary>
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

    [Fact]
    public async Task Model_lifecycle_json_outputs_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-lifecycle", ServiceRoles.Api, Ct);
        var api = host.Client.BaseAddress!.ToString();
        string[] Names(int count) => Enumerable.Range(0, count).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([6, 4, 1], seed: 1, featureNames: Names(6)).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([6, 4, 1], seed: 2, featureNames: Names(6)).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([7, 4, 1], seed: 3, featureNames: Names(7)).Bytes, Ct);
        string[] Cli(params string[] args) => [.. args, "--json", "--api", api];

        await CliJsonAsync([], 0, Cli("models", "alias", "--name", "churn", "--alias", "production", "--version", "1"));
        await CliJsonAsync([], 0, Cli("models", "alias", "--name", "churn", "--alias", "production", "--version", "2"));
        SchemaAssert.Valid("model-version.schema.json", await CliJsonAsync([], 0, Cli("models", "rollback", "--name", "churn", "--alias", "production")), "models rollback --json");
        SchemaAssert.Valid("model-version.schema.json", await CliJsonAsync([], 0, Cli("models", "archive", "--name", "churn", "--version", "2")), "models archive --json");
        SchemaAssert.Valid("model-version.schema.json", await CliJsonAsync([], 0, Cli("models", "unarchive", "--name", "churn", "--version", "2")), "models unarchive --json");
        SchemaAssert.Valid("model-version-deleted.schema.json", await CliJsonAsync([], 0, Cli("models", "delete", "--name", "churn", "--version", "2")), "models delete --json");
        SchemaAssert.Valid("alias-move-refused.schema.json", await CliJsonAsync([], 1, Cli("models", "alias", "--name", "churn", "--alias", "production", "--version", "3")), "models alias --json (refused)");

        // Schedule controls answer the schedule.
        await CliJsonAsync([], 0, Cli("schedules", "create", "--name", "contract-pause", "--cron", "0 2 * * *", "--model", "churn@1",
            "--input", Path.Combine(host.WorkDir, "{date:yyyy-MM-dd}.csv"), "--key-column", "id", "--output-table", "scoring.contract_pause"));
        foreach (var verb in new[] { "pause", "resume", "delete" })
        {
            SchemaAssert.Valid("schedule.schema.json", await CliJsonAsync([], 0, Cli("schedules", verb, "--name", "contract-pause")), $"schedules {verb} --json");
        }
    }

    [Fact]
    public async Task Generate_json_and_score_json_match_their_schemas()
    {
        var dir = Directory.CreateTempSubdirectory("contract-score-");
        try
        {
            var generated = await CliJsonAsync([], 0, "generate", "--output-dir", dir.FullName, "--rows", "500", "--features", "4", "--hidden", "8", "--nan-every", "100", "--json");
            SchemaAssert.Valid("generate-output.schema.json", generated, "generate --json");
            var paths = System.Text.Json.JsonDocument.Parse(generated).RootElement;
            var (model, data) = (paths.GetProperty("model").GetString()!, paths.GetProperty("data").GetString()!);

            // With failed rows (failedRowsFile set) and without (NaN passed to the model: failedRowsFile null).
            var withFailures = await CliJsonAsync([], 0, "score", "--model-file", model, "--input", data, "--key-column", "customer_id",
                "--output-parquet", Path.Combine(dir.FullName, "scored.parquet"), "--json");
            SchemaAssert.Valid("score-summary.schema.json", withFailures, "score --json (failed rows)");
            Assert.Equal(System.Text.Json.JsonValueKind.String, System.Text.Json.JsonDocument.Parse(withFailures).RootElement.GetProperty("failedRowsFile").ValueKind);
            var clean = await CliJsonAsync([], 0, "score", "--model-file", model, "--input", data, "--key-column", "customer_id",
                "--output-parquet", Path.Combine(dir.FullName, "all.parquet"), "--allow-non-finite", "--json");
            SchemaAssert.Valid("score-summary.schema.json", clean, "score --json (no failed rows)");
            Assert.Equal(System.Text.Json.JsonValueKind.Null, System.Text.Json.JsonDocument.Parse(clean).RootElement.GetProperty("failedRowsFile").ValueKind);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task<string> CliJsonAsync(Dictionary<string, string?> environment, int exit, params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(environment, Ct, args);
        Assert.True(code == exit, $"batchscore {string.Join(' ', args)} exited {code}:\n{stdout}{stderr}");
        return stdout;
    }
}
