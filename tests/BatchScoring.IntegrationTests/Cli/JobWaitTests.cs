using System.Net.Http.Json;
using System.Text.RegularExpressions;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>`jobs submit --wait` and `jobs status --wait` of the real CLI process against the real service.</summary>
public sealed partial class JobWaitTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Wait_rides_out_503s_while_polling_exits_0_when_the_job_succeeds_and_returns_promptly()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cliwait", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([6, 8, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 20_000, Features = 6, RowGroupRows = 2_000 }, Ct);
        await using var proxy = await FaultyProxy.StartAsync(host.Client.BaseAddress!, Ct);
        var statusReads = 0;
        // The first two reads of the job's status after the submit: at least one of them happens while the job runs.
        proxy.FailWhen = (method, path) => method == "GET" && JobPath().IsMatch(path) && Interlocked.Increment(ref statusReads) <= 2;

        var run = await CliProcess.RunAsync(Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "wait_results", "--chunk-rows", "2000",
            "--wait", "--json", "--api", proxy.Address.ToString());
        var exited = DateTimeOffset.UtcNow;

        Assert.True(run.Exit == 0, run.Stdout + run.Stderr);
        Assert.Equal(2, proxy.Injected);
        Assert.Contains("503", run.Stderr, StringComparison.Ordinal); // said once that it retries
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        var status = System.Text.Json.JsonSerializer.Deserialize<JobStatus>(run.Stdout, ServiceTestHost.Json)!;
        Assert.Equal("succeeded", status.State);
        Assert.Equal(20_000, status.ScoredRows);
        // Long polls, answered when the job ends: the process ends within seconds of the job, not at the end of a
        // 30 s poll (the bound leaves room for the retry pauses and process exit on a loaded machine).
        Assert.True(exited - status.FinishedAt!.Value < TimeSpan.FromSeconds(10), $"CLI ended {exited - status.FinishedAt} after the job");
    }

    [Fact]
    public async Task Wait_exits_1_with_the_reason_when_the_job_fails()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cliwaitfail", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([6, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "nan.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = 6, RowGroupRows = 1_000, NaNEvery = 10 }, Ct);

        var run = await CliProcess.RunAsync(Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "fail_results", "--max-failed-rows", "0",
            "--wait", "--api", host.Client.BaseAddress!.ToString());

        CliAssert.OneLineError(1, run, "failed");
        Assert.Contains("failed", run.Stdout, StringComparison.Ordinal); // the job's description with its failures
    }

    [Fact]
    public async Task Wait_exits_6_on_timeout_and_5_for_a_cancelled_job()
    {
        // No worker: the job is accepted and never progresses.
        await using var host = await ServiceTestHost.StartAsync(servers, "cliwaitstuck", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([6, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 1_000, Features = 6, RowGroupRows = 1_000 }, Ct);
        var api = host.Client.BaseAddress!.ToString();

        var started = DateTime.UtcNow;
        var submitted = await CliProcess.RunAsync(Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "stuck_results", "--wait", "--timeout", "2s", "--api", api);
        CliAssert.OneLineError(6, submitted, "timed out after 2 s");
        Assert.Contains("jobs status", submitted.Stderr, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30));
        var id = Guid.Parse(JobId().Match(submitted.Stderr).Value);

        using var cancel = await host.Client.PostAsJsonAsync($"/api/jobs/{id}/cancel", new { }, Ct);
        Assert.True(cancel.IsSuccessStatusCode, await cancel.Content.ReadAsStringAsync(Ct));
        CliAssert.OneLineError(5, await CliProcess.RunAsync(Ct, "jobs", "status", id.ToString(), "--wait", "--api", api), "cancelled");
        Assert.Equal(0, (await CliProcess.RunAsync(Ct, "jobs", "status", id.ToString(), "--api", api)).Exit);
    }

    [Fact]
    public async Task Wait_on_a_job_that_no_worker_consumes_says_so_once_and_keeps_waiting()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cliwaitnoworker", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([6, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 2_000, Features = 6, RowGroupRows = 1_000 }, Ct);

        // Nothing done after JobWaiter.StallHint (15 s): the wait asks GET /api/service, warns, and waits on to its timeout.
        var run = await CliProcess.RunAsync(Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "noworker_results",
            "--chunk-rows", "1000", "--wait", "--timeout", "20s", "--api", host.Client.BaseAddress!.ToString());

        Assert.Equal(6, run.Exit);
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-chunks";
        var warnings = run.Stderr.Split('\n').Where(l => l.StartsWith("warning: no worker consumes", StringComparison.Ordinal)).ToList();
        Assert.Equal([$"warning: no worker consumes {queue} (2 chunk messages waiting): this job waits until one starts (`batchscore serve --roles worker`)."], warnings);
        Assert.Contains("timed out after 20 s", run.Stderr, StringComparison.Ordinal);
    }

    [GeneratedRegex("^/api/jobs/[0-9a-f-]{36}$")]
    private static partial Regex JobPath();

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex JobId();
}
