using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary>
/// The job reads of the status page (chunks, failed rows), <c>jobs submit --json</c>, label ingests and performance reports,
/// checked against schemas/ on real jobs.
/// </summary>
public sealed class JobReadContractTests(ServerFixture servers)
{
    private const int Features = 6;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Submit_json_chunks_and_failed_rows_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-reads", ServiceRoles.All, Ct);
        var api = host.Client.BaseAddress!.ToString();
        var names = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 8, 1], seed: 4, featureNames: names).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = Features, RowGroupRows = 1_000, NaNEvery = 500 }, Ct);

        var submitted = await CliJsonAsync(0, "jobs", "submit", "--model", "churn", "--input", input, "--key-column", "customer_id",
            "--output-table", "scoring.contract_reads", "--chunk-rows", "1000", "--max-failed-percent", "50", "--json", "--api", api);
        SchemaAssert.Valid("job-status.schema.json", submitted, "jobs submit --json");
        var id = System.Text.Json.JsonDocument.Parse(submitted).RootElement.GetProperty("id").GetGuid();
        Assert.Equal("succeeded", (await host.WaitForEndAsync(id, TimeSpan.FromMinutes(2), Ct)).State);

        SchemaAssert.EachValid("job-chunk.schema.json", await host.Client.GetStringAsync($"/api/jobs/{id}/chunks", Ct), "GET /api/jobs/{id}/chunks");
        var failedRows = await host.Client.GetStringAsync($"/api/jobs/{id}/failed-rows", Ct);
        SchemaAssert.EachValid("job-failed-row.schema.json", failedRows, "GET /api/jobs/{id}/failed-rows");
        // The generated keys are integers: the typed key is that JSON number, the text key its digits.
        var rows = System.Text.Json.JsonDocument.Parse(failedRows).RootElement.EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        Assert.All(rows, row =>
        {
            Assert.Equal(System.Text.Json.JsonValueKind.Number, row.GetProperty("rowKeyValue").ValueKind);
            Assert.Equal(long.Parse(row.GetProperty("rowKey").GetString()!, System.Globalization.CultureInfo.InvariantCulture), row.GetProperty("rowKeyValue").GetInt64());
        });

        // With --wait, --json prints the final status.
        SchemaAssert.Valid("job-status.schema.json", await CliJsonAsync(0, "jobs", "submit", "--model", "churn", "--input", input, "--key-column", "customer_id",
            "--output-table", "scoring.contract_reads_wait", "--max-failed-percent", "50", "--wait", "--json", "--api", api), "jobs submit --wait --json");

        // A job that fails (exit 1 with --wait) and its retry answer the job's status too.
        var failed = await CliJsonAsync(1, "jobs", "submit", "--model", "churn", "--input", input, "--key-column", "customer_id",
            "--output-table", "scoring.contract_reads_failed", "--max-failed-rows", "0", "--wait", "--json", "--api", api);
        SchemaAssert.Valid("job-status.schema.json", failed, "jobs submit --wait --json (failed)");
        var failedId = System.Text.Json.JsonDocument.Parse(failed).RootElement.GetProperty("id").GetString()!;
        SchemaAssert.Valid("job-status.schema.json", await CliJsonAsync(0, "jobs", "retry", failedId, "--json", "--api", api), "jobs retry --json");
    }

    [Fact]
    public async Task Label_ingests_and_performance_reports_match_their_schemas()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "contract-perf", ServiceRoles.All, Ct);
        var api = host.Client.BaseAddress!.ToString();
        var names = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 8, 1], seed: 4, featureNames: names).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 1_000, Features = Features }, Ct);
        var (response, job, body) = await host.SubmitAsync(new BatchScoring.Contracts.SubmitScoringJob
        {
            Model = "churn", Input = input, KeyColumn = "customer_id", OutputTable = "scoring.contract_perf",
        }, Ct);
        Assert.True(response.IsSuccessStatusCode, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(job!.Id, TimeSpan.FromMinutes(2), Ct)).State);

        var labels = Path.Combine(host.WorkDir, "labels.csv");
        await File.WriteAllLinesAsync(labels, ["customer_id,churned", .. Enumerable.Range(0, 1_000).Select(i => $"{i},{i % 3 % 2}")], Ct);
        SchemaAssert.Valid("label-ingest-result.schema.json", await CliJsonAsync(0, "labels", "ingest", "--model", "churn", "--input", labels,
            "--key-column", "customer_id", "--label-column", "churned", "--json", "--api", api), "labels ingest --json");

        SchemaAssert.EachValid("performance-report.schema.json", await host.Client.GetStringAsync("/api/models/churn/performance", Ct), "GET /api/models/churn/performance");
        SchemaAssert.EachValid("performance-report.schema.json", await CliJsonAsync(0, "performance", "report", "--name", "churn", "--json", "--api", api), "performance report --json");
        SchemaAssert.EachValid("performance-report.schema.json", await host.Client.GetStringAsync("/api/models/churn/performance/reports", Ct), "GET /api/models/churn/performance/reports");
    }

    private static async Task<string> CliJsonAsync(int? exit, params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(Ct, args);
        Assert.True(exit is null || code == exit, $"batchscore {string.Join(' ', args)} exited {code}:\n{stdout}{stderr}");
        return stdout;
    }
}
