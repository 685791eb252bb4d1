using BatchScoring.Data;
using BatchScoring.Scoring.Data;

namespace BatchScoring.IntegrationTests.Data;

public sealed class JobStoreTests(DataDatabase db) : IClassFixture<DataDatabase>
{
    private JobStore Store => db.Jobs;

    [Fact]
    public async Task Create_stores_job_and_chunks_and_derives_totals()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = TestData.Job();

        var result = await Store.CreateJobAsync(job, TestData.Chunks(4, 250), ct);

        Assert.True(result.Created);
        var stored = result.Job;
        Assert.Equal(job.Id, stored.Id);
        Assert.Equal(JobState.Queued, stored.State);
        Assert.Equal((1000L, 4, 0, 0), (stored.TotalRows, stored.ChunksTotal, stored.ChunksDone, stored.ChunksFailed));
        Assert.Equal(["region"], stored.PassthroughColumns);
        Assert.Equal(["f1", "f2"], stored.FeatureColumns!);
        Assert.True(stored.CreatedAt > DateTimeOffset.UtcNow.AddMinutes(-5));
        var chunks = await Store.GetPendingChunksAsync(job.Id, ct);
        Assert.Equal([0, 1, 2, 3], chunks.Select(c => c.ChunkIndex));
        Assert.Equal(750, chunks[3].RowStart);
        Assert.Equal(3, chunks[3].RowGroup);
    }

    [Fact]
    public async Task A_job_without_chunks_is_refused_and_nothing_is_written()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = TestData.Job();

        // Every job has a chunk (an empty input is one chunk of no rows), so every job ends through the finisher.
        await Assert.ThrowsAsync<ArgumentException>(() => Store.CreateJobAsync(job, [], ct));

        Assert.Null(await Store.GetJobAsync(job.Id, ct));
    }

    [Fact]
    public async Task Failure_reasons_are_counted_by_column_and_reason_without_the_quoted_value()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(), chunks: 1, rowsEach: 10, ct);
        await using (var commit = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "w", ct))
        {
            Assert.NotNull(commit);
            await commit.WriteFailedRowsAsync(
                [
                    new FailedRow(job.Id, null, 0, 0, "k0", "f1", "NaN in 'a'"),
                    new FailedRow(job.Id, null, 0, 1, "k1", "f1", "NaN in 'b'"),
                    new FailedRow(job.Id, null, 0, 2, "k2", null, "row unreadable"),
                ],
                ct);
            await commit.CompleteAsync(7, 3, ct);
        }

        var reasons = await Store.CountFailureReasonsAsync(job.Id, 5, ct);

        Assert.Equal([("f1: NaN in", 2L), ("*: row unreadable", 1L)], reasons);
        Assert.Single(await Store.CountFailureReasonsAsync(job.Id, 1, ct));
    }

    [Fact]
    public async Task An_existing_idempotency_key_returns_the_existing_job()
    {
        var ct = TestContext.Current.CancellationToken;
        var key = db.Server.UniqueName("idem");

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Store.CreateJobAsync(TestData.Job(idempotencyKey: key), TestData.Chunks(2, 10), ct), ct)));

        var winner = Assert.Single(results, r => r.Created);
        Assert.All(results, r => Assert.Equal(winner.Job.Id, r.Job.Id));
        Assert.Equal(2, (await Store.GetChunksAsync(winner.Job.Id, ct)).Count);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.jobs WHERE idempotency_key = $1", ct, key));
        Assert.Equal(winner.Job.Id, (await Store.GetJobByIdempotencyKeyAsync(key, ct))!.Id);
    }

    [Fact]
    public async Task List_filters_by_state_and_model_newest_first()
    {
        var ct = TestContext.Current.CancellationToken;
        var model = db.Server.UniqueName("list");
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await Store.CreateJobAsync(TestData.Job(model), TestData.Chunks(1, 1), ct)).Job.Id);
        }

        await Store.MarkRunningAsync(ids[1], ct);

        var all = await Store.ListJobsAsync(new JobListFilter(ModelName: model), ct);
        Assert.Equal(ids.AsEnumerable().Reverse(), all.Select(j => j.Id));
        var queued = await Store.ListJobsAsync(new JobListFilter(JobState.Queued, model), ct);
        Assert.Equal([ids[2], ids[0]], queued.Select(j => j.Id));
        var page = await Store.ListJobsAsync(new JobListFilter(ModelName: model, Limit: 1, Offset: 1), ct);
        Assert.Equal([ids[1]], page.Select(j => j.Id));
        Assert.Equal(JobState.Running, (await Store.GetJobAsync(ids[1], ct))!.State);
        Assert.NotNull((await Store.GetJobAsync(ids[1], ct))!.StartedAt);
        Assert.False(await Store.MarkRunningAsync(ids[1], ct));
        Assert.Null(await Store.GetJobAsync(Guid.NewGuid(), ct));
    }

    [Theory]
    [InlineData(null, null, 5L, JobState.Succeeded)] // no thresholds: failed rows are tolerated
    [InlineData(5L, null, 5L, JobState.Succeeded)] // at the row threshold
    [InlineData(5L, null, 6L, JobState.Failed)] // past the row threshold
    [InlineData(null, 10.0, 10L, JobState.Succeeded)] // 10 of 100 = 10% (not above)
    [InlineData(null, 10.0, 11L, JobState.Failed)] // 11%
    [InlineData(100L, 0.5, 1L, JobState.Failed)] // the percentage wins over a loose row limit
    public async Task TryFinish_applies_the_error_thresholds(long? thresholdRows, double? thresholdPercent, long failedRows, JobState expected)
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(thresholdRows: thresholdRows, thresholdPercent: thresholdPercent), chunks: 2, rowsEach: 50, ct);

        await CompleteChunkAsync(job.Id, 0, 50 - failedRows, failedRows, ct);
        Assert.Null(await Store.TryFinishJobAsync(job.Id, ct)); // one chunk still pending
        await CompleteChunkAsync(job.Id, 1, 50, 0, ct);

        Assert.Equal(expected, await Store.TryFinishJobAsync(job.Id, ct));
        var stored = await Store.GetJobAsync(job.Id, ct);
        Assert.Equal(expected, stored!.State);
        Assert.NotNull(stored.FinishedAt);
        if (expected == JobState.Failed)
        {
            Assert.Contains("threshold", stored.Error, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(stored.Error);
        }
    }

    [Fact]
    public async Task TryFinish_fails_a_job_with_a_failed_chunk_and_has_a_single_winner()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(), chunks: 2, rowsEach: 10, ct);
        await CompleteChunkAsync(job.Id, 0, 10, 0, ct);
        await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 1, "w", "unreadable", ct);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.TryFinishJobAsync(job.Id, ct), ct)));

        Assert.Equal(JobState.Failed, Assert.Single(results, r => r is not null));
        Assert.Equal("1 of 2 chunks failed; chunk 1: unreadable", (await Store.GetJobAsync(job.Id, ct))!.Error);
        Assert.Null(await Store.TryFinishJobAsync(job.Id, ct));
    }

    [Fact]
    public async Task Cancel_stops_an_active_job_only()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(), chunks: 2, rowsEach: 10, ct);
        await CompleteChunkAsync(job.Id, 0, 10, 0, ct);

        Assert.True(await Store.CancelJobAsync(job.Id, ct));
        Assert.False(await Store.CancelJobAsync(job.Id, ct));

        var stored = await Store.GetJobAsync(job.Id, ct);
        Assert.Equal(JobState.Cancelled, stored!.State);
        Assert.Null(await Store.TryFinishJobAsync(job.Id, ct));
        Assert.Equal([1], (await Store.GetPendingChunksAsync(job.Id, ct)).Select(c => c.ChunkIndex));
    }

    [Fact]
    public async Task Retry_resets_only_failed_chunks_and_keeps_counts_consistent()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(), chunks: 3, rowsEach: 10, ct);
        await CompleteChunkAsync(job.Id, 0, 9, 1, ct);
        await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 1, "w", "unreadable", ct);
        await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 2, "w", "unreadable", ct);
        // A stray failed-row record of a failed chunk (e.g. written outside a chunk commit) must not survive a retry.
        await using (var connection = await db.DataSource.OpenConnectionAsync(ct))
        {
            await FailedRowWriter.WriteAsync(connection, [new FailedRow(job.Id, null, 2, 20, "k", null, "stray")], ct);
        }

        Assert.Equal(JobState.Failed, await Store.TryFinishJobAsync(job.Id, ct));
        Assert.Null(await Store.PrepareRetryAsync(Guid.NewGuid(), RetryMode.FailedChunks, ct));

        var pending = await Store.PrepareRetryAsync(job.Id, RetryMode.FailedChunks, ct);

        Assert.NotNull(pending);
        Assert.Equal([1, 2], pending.Select(c => c.ChunkIndex));
        var stored = await Store.GetJobAsync(job.Id, ct);
        Assert.Equal((JobState.Running, 9L, 1L, 1, 0), (stored!.State, stored.ScoredRows, stored.FailedRows, stored.ChunksDone, stored.ChunksFailed));
        Assert.Null(stored.Error);
        Assert.Null(stored.FinishedAt);
        var failedRows = await Store.GetFailedRowsAsync(job.Id, 100, ct);
        Assert.Equal([0], failedRows.Select(f => f.ChunkIndex!.Value)); // chunk 0's record stays, the stray one is gone
        Assert.Null(await Store.PrepareRetryAsync(job.Id, RetryMode.FailedChunks, ct)); // running jobs cannot be retried

        await CompleteChunkAsync(job.Id, 1, 10, 0, ct);
        await CompleteChunkAsync(job.Id, 2, 8, 2, ct);
        Assert.Equal(JobState.Succeeded, await Store.TryFinishJobAsync(job.Id, ct));
        stored = await Store.GetJobAsync(job.Id, ct);
        Assert.Equal((27L, 3L, 3, 0), (stored!.ScoredRows, stored.FailedRows, stored.ChunksDone, stored.ChunksFailed));
    }

    [Fact]
    public async Task Retry_of_a_cancelled_job_returns_the_pending_chunks()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningAsync(TestData.Job(), chunks: 3, rowsEach: 10, ct);
        await CompleteChunkAsync(job.Id, 1, 10, 0, ct);
        await Store.CancelJobAsync(job.Id, ct);

        var pending = await Store.PrepareRetryAsync(job.Id, RetryMode.FailedChunks, ct);

        Assert.Equal([0, 2], pending!.Select(c => c.ChunkIndex));
        Assert.Equal(JobState.Running, (await Store.GetJobAsync(job.Id, ct))!.State);
    }

    private async Task<JobEntity> CreateRunningAsync(JobEntity job, int chunks, long rowsEach, CancellationToken ct)
    {
        var created = await Store.CreateJobAsync(job, TestData.Chunks(chunks, rowsEach), ct);
        Assert.True(await Store.MarkRunningAsync(created.Job.Id, ct));
        return created.Job;
    }

    private async Task CompleteChunkAsync(Guid jobId, int chunkIndex, long scored, long failed, CancellationToken ct)
    {
        await using var commit = await ChunkCommit.BeginAsync(db.DataSource, jobId, chunkIndex, "w", ct);
        Assert.NotNull(commit);
        if (failed > 0)
        {
            await commit.WriteFailedRowsAsync(
                Enumerable.Range(0, (int)failed).Select(i => new FailedRow(jobId, null, chunkIndex, i, $"k{i}", "f1", "bad")).ToList(),
                ct);
        }

        await commit.CompleteAsync(scored, failed, ct);
    }
}
