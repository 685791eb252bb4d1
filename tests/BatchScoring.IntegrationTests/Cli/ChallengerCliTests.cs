using System.Net.Http.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>`jobs submit --challenger` and the challenger lines of `jobs status`, from the real CLI process.</summary>
public sealed class ChallengerCliTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Submit_with_a_challenger_shows_the_comparison_and_an_incompatible_one_exits_2()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "clichallenger", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("churn", SampleModels.TreeEnsembleClassifier(featureCount: 4, seed: 1).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.TreeEnsembleClassifier(featureCount: 4, treeCount: 4, seed: 2).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.TreeEnsembleClassifier(featureCount: 5, seed: 3).Bytes, Ct);
        using (var alias = await host.Client.PutAsJsonAsync("/api/models/churn/aliases/staging", new { version = 2 }, Ct))
        {
            Assert.True(alias.IsSuccessStatusCode);
        }

        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = 4, RowGroupRows = 1_000 }, Ct);
        var api = host.Client.BaseAddress!.ToString();
        string[] Submit(string challenger, params string[] more) =>
        [
            "jobs", "submit", "--model", "churn@1", "--challenger", challenger, "--input", input, "--key-column", "customer_id",
            "--features", "f_000,f_001,f_002,f_003", "--output-table", "cli_challenger", "--api", api, .. more,
        ];

        var run = await CliProcess.RunAsync(Ct, Submit("churn@staging", "--wait", "--json"));

        Assert.True(run.Exit == 0, run.Stdout + run.Stderr);
        var status = System.Text.Json.JsonSerializer.Deserialize<JobStatus>(run.Stdout, ServiceTestHost.Json)!;
        Assert.Equal(2, status.Challenger!.ModelVersion);
        Assert.Equal(2_000, status.Challenger.Comparison!.RowsCompared);
        var shown = await CliProcess.RunAsync(Ct, "jobs", "status", status.Id.ToString(), "--api", api);
        Assert.Equal(0, shown.Exit);
        Assert.Contains("challenger churn v2", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("table    cli_challenger_challenger", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("compared 2,000 rows", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("same predicted label", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("p99", shown.Stdout, StringComparison.Ordinal);

        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, Submit("churn@3")), "not signature-compatible with model 'churn' v1");
    }
}
