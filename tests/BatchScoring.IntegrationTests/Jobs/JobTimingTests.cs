using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using BatchScoring.Api;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>Long polling of a job's status and the per-stage seconds of a job (docs/job-timing.md).</summary>
public sealed partial class JobTimingTests(ServerFixture servers)
{
    private const int Features = 6;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Long_poll_answers_when_the_job_ends_not_when_its_wait_runs_out()
    {
        // No worker: the job only changes when it is cancelled.
        await using var host = await ServiceTestHost.StartAsync(servers, "longpoll", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 100, Features = Features, RowGroupRows = 100 }, Ct);
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "lp_results" }, Ct);
        Assert.True(response.IsSuccessStatusCode, body);
        var id = submitted!.Id;
        var current = await host.GetStatusAsync(id, Ct);

        var watch = Stopwatch.StartNew();
        var poll = host.Client.GetFromJsonAsync<JobStatus>(
            $"/api/jobs/{id}?wait=60s&since={Uri.EscapeDataString(current.UpdatedAt!.Value.ToString("O", CultureInfo.InvariantCulture))}", ServiceTestHost.Json, Ct);
        var listener = host.Services.GetRequiredService<JobChangeListener>();
        await Poll.UntilAsync(() => listener.IsWaitedOn(id) || poll.IsCompleted, TimeSpan.FromSeconds(30), "the long poll to wait on the job", Ct);
        Assert.False(poll.IsCompleted, "the long poll answered although the job had not changed");

        using var cancel = await host.Client.PostAsJsonAsync($"/api/jobs/{id}/cancel", new { }, Ct);
        Assert.True(cancel.IsSuccessStatusCode, await cancel.Content.ReadAsStringAsync(Ct));
        var answer = await poll.WaitAsync(TimeSpan.FromSeconds(40), Ct);

        Assert.Equal("cancelled", answer!.State);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45), $"answered after {watch.Elapsed}, not at the change");
        Assert.True(answer.UpdatedAt > current.UpdatedAt);

        // An ended job is answered at once; a malformed wait is refused.
        var ended = Stopwatch.StartNew();
        var again = await host.Client.GetFromJsonAsync<JobStatus>($"/api/jobs/{id}?wait=60", ServiceTestHost.Json, Ct);
        Assert.Equal("cancelled", again!.State);
        Assert.True(ended.Elapsed < TimeSpan.FromSeconds(30), $"an ended job's long poll took {ended.Elapsed}");
        using var bad = await host.Client.GetAsync($"/api/jobs/{id}?wait=forever", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Long_poll_of_a_running_job_returns_its_progress_and_the_end()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "longpollrun", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 8, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 4_000, Features = Features, RowGroupRows = 500 }, Ct);
        var (response, submitted, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "lpr_results", ChunkRows = 500 }, Ct);
        Assert.True(response.IsSuccessStatusCode, body);

        // Every answer before the end comes at a change: the chunks done never go back, and the last answer is the end.
        var last = submitted!;
        var answers = 0;
        var watch = Stopwatch.StartNew();
        while (last.State is "queued" or "running")
        {
            var since = last.UpdatedAt is { } seen ? $"&since={Uri.EscapeDataString(seen.ToString("O", CultureInfo.InvariantCulture))}" : "";
            var next = (await host.Client.GetFromJsonAsync<JobStatus>($"/api/jobs/{last.Id}?wait=60s{since}", ServiceTestHost.Json, Ct))!;
            Assert.True(next.ChunksDone >= last.ChunksDone);
            last = next;
            Assert.True(++answers <= 100, "more answers than the job has changes");
            Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), $"job still {last.State} after {watch.Elapsed}");
        }

        Assert.Equal("succeeded", last.State);
        Assert.Equal(8, last.ChunksDone);
    }

    [Fact]
    public async Task Job_status_reports_seconds_per_stage_within_its_wall_time_and_metrics_export_them()
    {
        // One chunk of one batch: no stage overlaps another (nor another chunk's queue wait), so the stages fit in the wall time.
        await using var host = await ServiceTestHost.StartAsync(servers, "stages", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 32, 1], seed: 5).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = Features, RowGroupRows = 3_000 }, Ct);
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "m",
            Input = input,
            KeyColumn = "customer_id",
            OutputTable = "stage_results",
            OutputParquet = Path.Combine(host.WorkDir, "out"),
            ChunkRows = 3_000,
            BatchRows = 3_000,
        }, Ct);
        Assert.True(response.IsSuccessStatusCode, body);
        Assert.Null(submitted!.Stages); // only the job's own status sums its chunks

        var final = await host.WaitForEndAsync(submitted.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.Equal("succeeded", final.State);
        var stages = final.Stages!;
        Assert.True(stages.Reading > 0, $"reading {stages.Reading}");
        Assert.True(stages.Inferring > 0, $"inferring {stages.Inferring}");
        Assert.True(stages.Copying > 0, $"copying {stages.Copying}");
        Assert.True(stages.WritingParquet > 0, $"parquet {stages.WritingParquet}");
        Assert.True(stages.Converting > 0, $"converting {stages.Converting}");
        Assert.True(stages.Waiting >= 0);
        var sum = stages.Reading + stages.Converting + stages.Inferring + stages.Copying + stages.WritingParquet + stages.Waiting;
        var wall = (final.FinishedAt!.Value - final.StartedAt!.Value).TotalSeconds;
        Assert.True(sum <= wall, $"stages sum to {sum} s, more than the job's {wall} s");

        var cli = await CliProcess.RunAsync(Ct, "jobs", "status", final.Id.ToString(), "--api", host.Client.BaseAddress!.ToString());
        Assert.True(cli.Exit == 0, cli.Stdout + cli.Stderr);
        Assert.Matches(StagesLine(), cli.Stdout);

        var metrics = await host.Client.GetStringAsync("/metrics", Ct);
        foreach (var stage in new[] { "read", "convert", "infer", "copy", "parquet", "wait" })
        {
            var count = metrics.Split('\n')
                .Where(l => l.StartsWith("batchscoring_chunk_stage_duration_seconds_count{", StringComparison.Ordinal) && l.Contains($"stage=\"{stage}\"", StringComparison.Ordinal))
                .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture))
                .Sum();
            Assert.True(count >= 1, $"stage {stage}: {count} chunks recorded on /metrics");
        }
    }

    [GeneratedRegex(@"stages\s+read \d+\.\d{3} s, convert \d+\.\d{3} s, infer \d+\.\d{3} s, copy \d+\.\d{3} s, parquet \d+\.\d{3} s, queue wait \d+\.\d{3} s")]
    private static partial Regex StagesLine();
}
