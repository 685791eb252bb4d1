using System.Diagnostics;
using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary>
/// examples/node-producer (Node.js, amqplib, written from schemas/ alone) against a real service: its job completes,
/// and what it received validates here too.
/// </summary>
public sealed class NodeProducerTests(ServerFixture servers)
{
    private const int Features = 4;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_node_example_submits_a_job_that_completes_and_gets_a_scored_answer()
    {
        var example = Path.GetDirectoryName(RepositoryPaths.FindUpwards(Path.Combine("examples", "node-producer", "producer.js"))
            ?? throw new FileNotFoundException("examples/node-producer/producer.js not found"))!;
        Assert.SkipUnless(await NodeVersionAsync() is not null, "node is not on PATH (./build.sh deps installs nodejs): the Node.js example producer was not run");
        Assert.True(Directory.Exists(Path.Combine(example, "node_modules", "amqplib")), $"{example}/node_modules is missing: run ./build.sh deps (npm ci in examples/node-producer)");

        await using var host = await ServiceTestHost.StartAsync(servers, "node-producer", ServiceRoles.All, Ct);
        var names = Enumerable.Range(0, Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 2, featureNames: names).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = Features, RowGroupRows = 1_000 }, Ct);

        var run = await RunAsync(example, [
            "producer.js", "--model", "churn", "--model-version", "1", "--input", input, "--key-column", "customer_id",
            "--output-table", "scoring.node_results", "--features", JsonSerializer.Serialize(names.ToDictionary(n => n, _ => 0.5)),
            "--queue-prefix", host.Settings["BatchScoring:QueuePrefix"], "--timeout-seconds", "90",
        ], servers.RabbitMqUri);
        Assert.True(run.Exit == 0, $"node producer.js exited {run.Exit}:\n{run.Stdout}\n{run.Stderr}");

        var steps = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .ToDictionary(e => e.GetProperty("step").GetString()!, e => e.GetProperty("body"));
        SchemaAssert.Valid("submit-scoring-job-accepted.schema.json", steps["accepted"], "SubmitScoringJobAccepted");
        SchemaAssert.Valid("scoring-job-completed.schema.json", steps["job-completed"], "ScoringJobCompleted");
        SchemaAssert.Valid("score-request-completed.schema.json", steps["answer"], "the score answer");
        Assert.Equal("scored", steps["answer"].GetProperty("outcome").GetString());
        Assert.Equal(1, steps["answer"].GetProperty("model").GetProperty("version").GetInt32());

        var job = await host.GetStatusAsync(steps["accepted"].GetProperty("jobId").GetGuid(), Ct);
        Assert.Equal("succeeded", job.State);
        Assert.Equal(2_000, job.ScoredRows);
    }

    private static async Task<string?> NodeVersionAsync()
    {
        try
        {
            var (exit, stdout, _) = await RunAsync(Directory.GetCurrentDirectory(), ["--version"], null);
            return exit == 0 ? stdout.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // not on PATH
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string directory, string[] args, string? amqpUrl)
    {
        var start = new ProcessStartInfo("node", args) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        if (amqpUrl is not null)
        {
            start.Environment["AMQP_URL"] = amqpUrl;
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        var stdout = await process.StandardOutput.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return (process.ExitCode, stdout, await stderr);
    }
}
