using System.Diagnostics;
using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using static BatchScoring.IntegrationTests.Jobs.JobFailureSupport;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// A chunk stopped part-way (MassTransit cancels the consume of every message in flight when the broker's connection
/// drops, and on shutdown) returns promptly from wherever it was: reading, inferring, COPYing or writing its Parquet
/// part. A stop that never returned would hold the consumer slot, and the receive endpoint waits for it before it
/// reconnects: the worker would never take another chunk. The attempts leave nothing behind: each chunk then commits
/// once, and none counts as a crashed attempt.
/// </summary>
public sealed class ChunkCancellationTests(ServerFixture servers, ITestOutputHelper output)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(15);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(2_000, 500)] // a chunk of four row groups
    [InlineData(250, 2_000)] // eight chunks per row group, which is decoded once and shared between them
    public async Task A_chunk_cancelled_at_any_point_returns_promptly_and_leaves_nothing_behind(int chunkRows, int rowGroupRows)
    {
        const int rows = 8_000;
        await using var host = await ServiceTestHost.StartAsync(servers, $"cancel_{chunkRows}", ServiceRoles.Api, Ct);
        string[] features = [.. Enumerable.Range(0, 16).Select(GeneratedDatasetOptions.FeatureName)];
        await host.RegisterModelAsync("m", SampleModels.Mlp([16, 256, 256, 1], seed: 3, featureNames: features).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = rows, Features = 16, RowGroupRows = rowGroupRows }, Ct);
        var table = $"cancel_{chunkRows}_results";
        var (response, job, body) = await host.SubmitAsync(
            new SubmitScoringJob
            {
                Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = table, OutputParquet = Path.Combine(host.WorkDir, "out"),
                ChunkRows = chunkRows, BatchRows = 250,
            },
            Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var chunks = (await host.Services.GetRequiredService<JobStore>().GetChunksAsync(job!.Id, Ct)).OrderBy(c => c.ChunkIndex).ToList();

        // No worker role here: every attempt is one of these calls. How long one whole chunk takes sets the range of stop points.
        var whole = await TimeOneChunkAsync(host, chunks[^1]);
        var stops = Enumerable.Range(0, 24).Select(i => TimeSpan.FromTicks(whole.Ticks * i / 20)).ToList();
        output.WriteLine($"one chunk of {chunkRows} rows: {whole.TotalMilliseconds:0} ms; stops at 0 to {stops[^1].TotalMilliseconds:0} ms");
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < stops.Count; i++)
        {
            var chunk = chunks[i % (chunks.Count - 1)];
            using var stop = new CancellationTokenSource(stops[i]);
            var clock = Stopwatch.StartNew();
            var attempt = ScoreAsync(host, chunk, stop.Token);
            var finished = await Task.WhenAny(attempt, Task.Delay(Prompt, Ct));
            Assert.True(finished == attempt, $"chunk {chunk.ChunkIndex} stopped after {stops[i].TotalMilliseconds:0} ms had not returned {Prompt.TotalSeconds} s later");
            string outcome;
            try
            {
                outcome = (await attempt).ToString();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                outcome = "stopped";
            }

            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            Assert.True(clock.Elapsed < stops[i] + Prompt);
        }

        output.WriteLine(string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}")));
        Assert.True(outcomes.GetValueOrDefault("stopped") > 0, "no attempt was stopped part-way; the test proves nothing");

        foreach (var chunk in chunks)
        {
            var outcome = await ScoreAsync(host, chunk, Ct);
            Assert.True(outcome is ChunkOutcome.Committed or ChunkOutcome.AlreadyDone, $"chunk {chunk.ChunkIndex}: {outcome}");
        }

        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(60), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(rows, final.ScoredRows);
        Assert.Equal(rows, await ScalarAsync(host.PostgresConnectionString, $"SELECT count(DISTINCT customer_id) FROM scoring.{table} WHERE job_id = $1", job.Id, Ct));
        Assert.Equal(rows, await ScalarAsync(host.PostgresConnectionString, $"SELECT count(*) FROM scoring.{table} WHERE job_id = $1", job.Id, Ct));
        // Stopped attempts closed themselves: none is left counted as a worker that died on its chunk.
        Assert.Equal(0L, await ScalarAsync(host.PostgresConnectionString, "SELECT count(*) FROM scoring.chunks WHERE job_id = $1 AND open_attempts > 0", job.Id, Ct));
    }

    [Fact]
    public async Task A_redelivered_message_of_a_jobs_last_chunk_finishes_the_job_its_consume_left_running()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cancel_finish", ServiceRoles.Api, Ct);
        var (job, chunks) = await ScoreTwoChunkJobAsync(host, outputParquet: null);
        Assert.Equal("succeeded", (await host.GetStatusAsync(job.Id, Ct)).State);

        // Every chunk committed, but the consume of the last one was stopped before its finisher ran.
        await LeaveUnfinishedAsync(host, job.Id);
        Assert.Equal("running", (await host.GetStatusAsync(job.Id, Ct)).State);

        // Its message, never acknowledged, comes back: the chunk is skipped and the job finished there and then.
        Assert.Equal(ChunkOutcome.AlreadyDone, await ScoreAsync(host, chunks[^1], Ct));
        var finished = await host.GetStatusAsync(job.Id, Ct);
        Assert.Equal(("succeeded", 1_000L), (finished.State, finished.ScoredRows));
        Assert.NotNull(finished.FinishedAt);
    }

    [Fact]
    public async Task Finishers_running_at_once_end_the_job_once_with_one_whole_manifest()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cancel_finishers", ServiceRoles.Api, Ct);
        var output = Path.Combine(host.WorkDir, "out");
        var (job, _) = await ScoreTwoChunkJobAsync(host, output);

        // Every chunk committed and no finisher has run yet; then several at once (the worker that committed the last
        // chunk, workers given redelivered messages of it, the reconciler). Some rounds, as the overlap is a race.
        for (var round = 0; round < 10; round++)
        {
            await LeaveUnfinishedAsync(host, job.Id);
            File.Delete(Path.Combine(output, JobFinisher.ManifestFileName));
            using var start = new ManualResetEventSlim();
            var finishers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                await using var scope = host.Services.CreateAsyncScope();
                var finisher = scope.ServiceProvider.GetRequiredService<JobFinisher>();
                start.Wait(Ct);
                await finisher.TryFinishAsync(job.Id, Ct);
            }, Ct)).ToList();
            start.Set();
            await Task.WhenAll(finishers);
        }

        Assert.Equal("succeeded", (await host.GetStatusAsync(job.Id, Ct)).State);
        Assert.Equal(
            [JobFinisher.ManifestFileName, "part-000000.parquet", "part-000001.parquet"],
            Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using var manifest = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, JobFinisher.ManifestFileName), Ct));
        Assert.Equal(job.Id, manifest.RootElement.GetProperty("jobId").GetGuid());
        Assert.Equal(2, manifest.RootElement.GetProperty("parts").GetArrayLength());
    }

    /// <summary>A 1,000-row job of two chunks, submitted and both chunks committed here (no worker role).</summary>
    private static async Task<(JobStatus Job, IReadOnlyList<ChunkEntity> Chunks)> ScoreTwoChunkJobAsync(ServiceTestHost host, string? outputParquet)
    {
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 3).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 1_000, Features = 4, RowGroupRows = 500 }, Ct);
        var (response, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "two_chunk_results", OutputParquet = outputParquet, ChunkRows = 500 }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var chunks = await host.Services.GetRequiredService<JobStore>().GetChunksAsync(job!.Id, Ct);
        Assert.Equal(2, chunks.Count);
        foreach (var chunk in chunks)
        {
            Assert.Equal(ChunkOutcome.Committed, await ScoreAsync(host, chunk, Ct));
        }

        return (job, chunks);
    }

    /// <summary>Back to what a finisher that never ran leaves: every chunk ended, the job still running.</summary>
    private static Task LeaveUnfinishedAsync(ServiceTestHost host, Guid jobId) =>
        ScalarAsync(host.PostgresConnectionString, "UPDATE scoring.jobs SET state = 'running', finished_at = NULL WHERE id = $1 RETURNING 0", jobId, Ct);

    private static async Task<TimeSpan> TimeOneChunkAsync(ServiceTestHost host, ChunkEntity chunk)
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(ChunkOutcome.Committed, await ScoreAsync(host, chunk, Ct));
        return clock.Elapsed;
    }

    private static async Task<ChunkOutcome> ScoreAsync(ServiceTestHost host, ChunkEntity chunk, CancellationToken cancellationToken)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ChunkScorer>().ScoreAsync(ChunkRanges.ToMessage(chunk), cancellationToken);
    }
}
