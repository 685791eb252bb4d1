using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;

namespace BatchScoring.IntegrationTests.Data;

public sealed class ChunkCommitTests(DataDatabase db) : IClassFixture<DataDatabase>
{
    private static readonly ResultTable Results = ResultTable.Define(
        "results_chunks",
        new ResultColumn("customer_id", ColumnKind.String),
        [new("region", ColumnKind.String)],
        [new("score", ColumnKind.Float32)]);

    [Fact]
    public async Task A_committed_chunk_is_not_begun_again_and_its_rows_exist_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 2, rowsEach: 3, ct);

        await using (var commit = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-a", ct))
        {
            Assert.NotNull(commit);
            Assert.Equal(1, commit.Chunk.Attempts);
            Assert.Equal(3, commit.Chunk.RowCount);
            Assert.Equal(2UL, await commit.WriteResultsAsync(Results, Context(job), Rows("c", 0, 2), ct));
            await commit.WriteResultsAsync(Results, Context(job), Rows("c", 2, 1), ct); // several writes per chunk
            var progress = await commit.CompleteAsync(scoredRows: 3, failedRows: 0, ct);
            Assert.Equal(new JobProgress(job.Id, JobState.Running, 6, 3, 0, 2, 1, 0), progress);
            Assert.False(progress.AllChunksFinished);
        }

        await using (var again = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-b", ct))
        {
            Assert.Null(again);
        }

        Assert.Equal(3L, await CountResultsAsync(job.Id, ct));
        var chunk = (await db.Jobs.GetChunksAsync(job.Id, ct))[0];
        Assert.Equal(ChunkState.Succeeded, chunk.State);
        Assert.Equal("worker-a", chunk.Worker);
        Assert.Equal(1, chunk.Attempts);
        Assert.NotNull(chunk.FinishedAt);
    }

    [Fact]
    public async Task A_chunk_that_failing_its_job_skipped_is_failed_by_its_next_attempt_instead_of_staying_pending()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 2, rowsEach: 3, ct);

        // Failing the job skips the pending chunks someone holds at that moment (here: chunk 1, as a worker's attempt
        // statement does for an instant); that holder then found the job failed and left the chunk pending.
        await using (var holder = await db.DataSource.OpenConnectionAsync(ct))
        await using (var hold = await holder.BeginTransactionAsync(ct))
        {
            await using (var lockChunk = new Npgsql.NpgsqlCommand("SELECT 1 FROM scoring.chunks WHERE job_id = $1 AND chunk_index = 1 FOR UPDATE", holder, hold))
            {
                lockChunk.Parameters.AddWithValue(job.Id);
                await lockChunk.ExecuteNonQueryAsync(ct);
            }

            Assert.True(await db.Jobs.FailJobAsync(job.Id, "too many failed rows", ct));
            await hold.RollbackAsync(ct);
        }

        Assert.Equal(ChunkState.Pending, (await db.Jobs.GetChunksAsync(job.Id, ct)).Single(c => c.ChunkIndex == 1).State);

        // Its message's next delivery ends it as failing the job would have.
        Assert.Null(await ChunkCommit.BeginAsync(db.DataSource, job.Id, 1, "worker-b", ct));
        var chunk = (await db.Jobs.GetChunksAsync(job.Id, ct)).Single(c => c.ChunkIndex == 1);
        Assert.Equal((ChunkState.Failed, "Not scored: the job failed (too many failed rows)"), (chunk.State, chunk.Error));
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT chunks_failed FROM scoring.jobs WHERE id = $1", ct, job.Id));

        // Once failed, another delivery changes nothing.
        Assert.Null(await ChunkCommit.BeginAsync(db.DataSource, job.Id, 1, "worker-c", ct));
        Assert.Equal(2, await db.ScalarAsync<int>("SELECT chunks_failed FROM scoring.jobs WHERE id = $1", ct, job.Id));
    }

    [Fact]
    public async Task Disposing_without_complete_leaves_nothing_and_a_second_attempt_commits_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 1, rowsEach: 3, ct);

        await using (var first = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-a", ct))
        {
            Assert.NotNull(first);
            await first.WriteResultsAsync(Results, Context(job), Rows("c", 0, 3), ct);
            await first.WriteFailedRowsAsync([new FailedRow(job.Id, null, 0, 2, "c2", "f1", "NaN in feature")], ct);
        } // worker "dies": no CompleteAsync

        Assert.Equal(0L, await CountResultsAsync(job.Id, ct));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.failed_rows WHERE job_id = $1", ct, job.Id));

        await using (var second = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-b", ct))
        {
            Assert.NotNull(second);
            Assert.Equal(2, second.Chunk.Attempts); // the first attempt is still counted
            await second.WriteResultsAsync(Results, Context(job), Rows("c", 0, 2), ct);
            await second.WriteFailedRowsAsync([new FailedRow(job.Id, null, 0, 2, "c2", "f1", "NaN in feature")], ct);
            var progress = await second.CompleteAsync(scoredRows: 2, failedRows: 1, ct);
            Assert.Equal(new JobProgress(job.Id, JobState.Running, 3, 2, 1, 1, 1, 0), progress);
            Assert.True(progress.AllChunksFinished);
        }

        Assert.Equal(2L, await CountResultsAsync(job.Id, ct));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.failed_rows WHERE job_id = $1", ct, job.Id));
        var failed = await db.Jobs.GetFailedRowsAsync(job.Id, 10, ct);
        Assert.Equal(("c2", "f1", "NaN in feature", 2L, 0), (failed[0].RowKey, failed[0].ColumnName, failed[0].Reason, failed[0].RowNumber, failed[0].ChunkIndex));
        Assert.Equal("worker-b", (await db.Jobs.GetChunksAsync(job.Id, ct))[0].Worker);
    }

    /// <summary>Waits until a session of this database is blocked on a lock (the second delivery on the chunk row).</summary>
    private Task WaitForLockWaiterAsync(CancellationToken ct) =>
        Poll.UntilAsync(
            async () => await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", ct) > 0,
            TimeSpan.FromSeconds(10), "the second delivery to wait on the chunk lock", ct, TimeSpan.FromMilliseconds(20));

    [Fact]
    public async Task A_concurrent_second_begin_waits_for_the_first_and_then_returns_null()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 1, rowsEach: 3, ct);

        var first = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-a", ct);
        Assert.NotNull(first);
        await using (first)
        {
            var second = Task.Run(() => ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-b", ct), ct);
            await WaitForLockWaiterAsync(ct);
            Assert.False(second.IsCompleted, "the second delivery must wait on the chunk lock");

            await first.WriteResultsAsync(Results, Context(job), Rows("c", 0, 3), ct);
            await first.CompleteAsync(3, 0, ct);

            Assert.Null(await second.WaitAsync(TimeSpan.FromSeconds(10), ct));
        }

        Assert.Equal(3L, await CountResultsAsync(job.Id, ct));
    }

    [Fact]
    public async Task A_concurrent_second_begin_takes_over_when_the_first_rolls_back()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 1, rowsEach: 3, ct);

        var first = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-a", ct);
        Assert.NotNull(first);
        var second = Task.Run(() => ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-b", ct), ct);
        await first.WriteResultsAsync(Results, Context(job), Rows("c", 0, 3), ct);
        await WaitForLockWaiterAsync(ct);
        await first.DisposeAsync();

        await using var taken = await second.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Assert.NotNull(taken);
        await taken.WriteResultsAsync(Results, Context(job), Rows("c", 0, 3), ct);
        await taken.CompleteAsync(3, 0, ct);
        Assert.Equal(3L, await CountResultsAsync(job.Id, ct));
    }

    [Fact]
    public async Task Many_concurrent_deliveries_of_the_same_chunk_write_its_rows_exactly_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 1, rowsEach: 100, ct);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(
            async () =>
            {
                await using var commit = await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, $"worker-{i}", ct);
                if (commit is null)
                {
                    return false;
                }

                await commit.WriteResultsAsync(Results, Context(job), Rows("c", 0, 100), ct);
                await commit.CompleteAsync(100, 0, ct);
                return true;
            },
            ct)));

        Assert.Equal(1, outcomes.Count(o => o));
        Assert.Equal(100L, await CountResultsAsync(job.Id, ct));
        var stored = await db.Jobs.GetJobAsync(job.Id, ct);
        Assert.Equal((100L, 1), (stored!.ScoredRows, stored.ChunksDone));
    }

    [Fact]
    public async Task Chunks_of_cancelled_jobs_are_skipped_and_missing_chunks_throw()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 1, rowsEach: 3, ct);
        Assert.True(await db.Jobs.CancelJobAsync(job.Id, ct));

        Assert.Null(await ChunkCommit.BeginAsync(db.DataSource, job.Id, 0, "worker-a", ct));
        Assert.Null(await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 0, "worker-a", "unreadable", ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => ChunkCommit.BeginAsync(db.DataSource, job.Id, 7, "worker-a", ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => ChunkCommit.BeginAsync(db.DataSource, Guid.NewGuid(), 0, "worker-a", ct));
    }

    [Fact]
    public async Task Failing_a_chunk_counts_it_and_makes_it_terminal()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 2, rowsEach: 5, ct);

        var progress = await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 1, "worker-a", "file truncated", ct);

        Assert.Equal(new JobProgress(job.Id, JobState.Running, 10, 0, 0, 2, 0, 1), progress);
        Assert.Null(await ChunkCommit.FailChunkAsync(db.DataSource, job.Id, 1, "worker-a", "again", ct));
        Assert.Null(await ChunkCommit.BeginAsync(db.DataSource, job.Id, 1, "worker-a", ct));
        var chunk = (await db.Jobs.GetChunksAsync(job.Id, ct))[1];
        Assert.Equal((ChunkState.Failed, "file truncated"), (chunk.State, chunk.Error));
    }

    [Fact]
    public async Task Job_progress_adds_up_over_chunks()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = await CreateRunningJobAsync(chunkCount: 3, rowsEach: 10, ct);

        var progress = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(
            async () =>
            {
                await using var commit = await ChunkCommit.BeginAsync(db.DataSource, job.Id, i, "w", ct);
                await commit!.WriteResultsAsync(Results, Context(job), Rows($"p{i}-", 0, 10 - i), ct);
                return await commit.CompleteAsync(10 - i, i, ct);
            },
            ct)));

        Assert.Single(progress, p => p.AllChunksFinished);
        var stored = await db.Jobs.GetJobAsync(job.Id, ct);
        Assert.Equal((30L, 27L, 3L, 3, 3, 0), (stored!.TotalRows, stored.ScoredRows, stored.FailedRows, stored.ChunksTotal, stored.ChunksDone, stored.ChunksFailed));
        Assert.Equal(27L, await CountResultsAsync(job.Id, ct));
    }

    private async Task<JobEntity> CreateRunningJobAsync(int chunkCount, long rowsEach, CancellationToken ct)
    {
        await Results.EnsureCreatedAsync(db.DataSource, ct);
        var created = await db.Jobs.CreateJobAsync(TestData.Job(), TestData.Chunks(chunkCount, rowsEach), ct);
        Assert.True(await db.Jobs.MarkRunningAsync(created.Job.Id, ct));
        return created.Job;
    }

    private static ResultRowContext Context(JobEntity job) => new(job.Id, null, job.ModelName, job.ModelVersion, DateTimeOffset.UtcNow);

    private static ColumnBatch Rows(string prefix, int start, int count) => new(
    [
        new BatchColumn("customer_id", ColumnKind.String, Enumerable.Range(start, count).Select(i => prefix + i).ToArray()),
        new BatchColumn("region", ColumnKind.String, Enumerable.Repeat("north", count).ToArray()),
        new BatchColumn("score", ColumnKind.Float32, Enumerable.Range(start, count).Select(i => i / 10f).ToArray()),
    ]);

    private Task<long> CountResultsAsync(Guid jobId, CancellationToken ct) =>
        db.ScalarAsync<long>("SELECT count(*) FROM scoring.results_chunks WHERE job_id = $1", ct, jobId);
}
