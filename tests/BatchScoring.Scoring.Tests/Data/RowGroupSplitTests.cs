using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>
/// Row groups up to 4 × the chunk size stay one chunk; larger ones are cut into chunk-size pieces, which a worker
/// decodes once however many of them it reads (Parquet.Net decodes a row group whole).
/// </summary>
public sealed class RowGroupSplitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-rowgroups-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly GeneratedDatasetOptions Data = new() { Rows = 9_000, Features = 3, RowGroupRows = 4_000 };

    private async Task<string> WriteAsync(string name, GeneratedDatasetOptions options)
    {
        var path = Path.Combine(_dir, name);
        await DatasetGenerator.WriteParquetAsync(path, options, Ct);
        return path;
    }

    [Fact]
    public async Task Row_groups_up_to_the_bound_stay_whole_and_larger_ones_are_cut_into_chunk_size_pieces()
    {
        var path = await WriteAsync("groups.parquet", Data);

        // 1,000-row chunks: the bound is 4,000, so groups of 4,000, 4,000 and 1,000 are one slice each.
        var whole = await Dataset.PlanAsync(path, 1_000, Ct);
        Assert.Equal([(0, 0L, 4_000L), (1, 4_000, 4_000), (2, 8_000, 1_000)], whole.Chunks.Select(c => (c.RowGroup ?? -1, c.RowStart, c.RowCount)));
        Assert.Equal(4_000, ParquetDataset.WholeRowGroupBound(1_000));

        // 900-row chunks: the bound is 3,600, so each 4,000-row group is cut at 900 rows; the last group stays whole.
        var split = await Dataset.PlanAsync(path, 900, Ct);
        Assert.Equal(
            [(0, 0L, 900L), (0, 900, 900), (0, 1_800, 900), (0, 2_700, 900), (0, 3_600, 400),
             (1, 4_000, 900), (1, 4_900, 900), (1, 5_800, 900), (1, 6_700, 900), (1, 7_600, 400), (2, 8_000, 1_000)],
            split.Chunks.Select(c => (c.RowGroup ?? -1, c.RowStart, c.RowCount)));
        Assert.Equal(9_000, split.TotalRows);
    }

    [Fact]
    public async Task Pieces_of_a_split_row_group_read_by_one_worker_decode_it_once_in_turn_or_at_once()
    {
        var path = await WriteAsync("split.parquet", Data);
        var plan = await Dataset.PlanAsync(path, 900, Ct);
        var chunks = ChunkPacking.Combine(plan.Chunks, 900);
        var cache = new ParquetRowGroupCache();

        // In turn: every chunk of the file, one after the other.
        var keys = new List<long>();
        foreach (var chunk in chunks)
        {
            keys.AddRange((await ReadAsync(plan, chunk, cache)).SelectMany(b => b.Batch[Data.KeyColumn].As<long>()));
        }

        Assert.Equal(Enumerable.Range(1, 9_000).Select(i => (long)i), keys);
        Assert.Equal(2, cache.Decodes); // the two split groups; the whole last one is read without the cache
        Assert.Equal(0, cache.Count); // each entry left once its pieces had covered the row group

        // At once: the five pieces of the first row group read concurrently wait for one decode.
        var atOnce = new ParquetRowGroupCache();
        var pieces = chunks.Where(c => c.RowGroup == 0).ToArray();
        Assert.Equal(5, pieces.Length);
        var batches = await Task.WhenAll(pieces.Select(c => Task.Run(() => ReadAsync(plan, c, atOnce))));
        Assert.Equal(1, atOnce.Decodes);
        Assert.Equal(Enumerable.Range(1, 4_000).Select(i => (long)i), batches.SelectMany(b => b).SelectMany(b => b.Batch[Data.KeyColumn].As<long>()));
        var expected = DatasetGenerator.CreateBatch(Data, 0, 4_000)[GeneratedDatasetOptions.FeatureName(1)].As<float>();
        Assert.Equal(expected, batches.SelectMany(b => b).SelectMany(b => b.Batch[GeneratedDatasetOptions.FeatureName(1)].As<float>()));
    }

    [Fact]
    public async Task A_file_replaced_between_pieces_is_decoded_again_not_served_from_the_old_decode()
    {
        var path = await WriteAsync("replaced.parquet", Data);
        var plan = await Dataset.PlanAsync(path, 900, Ct);
        var cache = new ParquetRowGroupCache();
        var first = Assert.Single(await ReadAsync(plan, plan.Chunks[0], cache));
        Assert.Equal(1L, first.Batch[Data.KeyColumn].As<long>()[0]);

        // Same layout and length, other values, and a different write time.
        var other = Data with { Seed = Data.Seed + 1 };
        await DatasetGenerator.WriteParquetAsync(path, other, Ct);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddMinutes(1));

        var second = Assert.Single(await ReadAsync(plan, plan.Chunks[1], cache));
        Assert.Equal(2, cache.Decodes);
        var feature = GeneratedDatasetOptions.FeatureName(0);
        Assert.Equal(DatasetGenerator.CreateBatch(other, 0, 4_000)[feature].As<float>().Skip(900).Take(900), second.Batch[feature].As<float>());
    }

    [Fact]
    public async Task A_damaged_row_group_fails_every_piece_naming_file_and_row_group_and_is_not_kept()
    {
        var path = await WriteAsync("damaged.parquet", Data);
        var plan = await Dataset.PlanAsync(path, 900, Ct);
        var bytes = await File.ReadAllBytesAsync(path, Ct);
        var random = new Random(3);
        for (var i = 4; i < bytes.Length / 3; i++)
        {
            bytes[i] = (byte)random.Next(256);
        }

        await File.WriteAllBytesAsync(path, bytes, Ct);
        var cache = new ParquetRowGroupCache();

        var errors = await Task.WhenAll(plan.Chunks.Take(3).Select(c => Task.Run(() => Assert.ThrowsAsync<DatasetException>(() => ReadAsync(plan, c, cache)))));

        foreach (var (error, chunk) in errors.Zip(plan.Chunks))
        {
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
            Assert.Contains("row group 0", error.Message, StringComparison.Ordinal);
            Assert.Contains($"chunk {chunk.Index}", error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public async Task The_cache_keeps_at_most_its_capacity_of_decoded_row_groups()
    {
        var path = await WriteAsync("many.parquet", new GeneratedDatasetOptions { Rows = 6_000, Features = 2, RowGroupRows = 1_000 });
        var plan = await Dataset.PlanAsync(path, 200, Ct);
        var cache = new ParquetRowGroupCache(capacity: 2);

        // The first piece of each of the six row groups: each stays cached (its other pieces are still to come).
        foreach (var chunk in plan.Chunks.Where(c => (c.RowStart % 1_000) == 0))
        {
            await ReadAsync(plan, chunk, cache);
            Assert.True(cache.Count <= 2, $"{cache.Count} row groups cached");
        }

        Assert.Equal(6, cache.Decodes);
        Assert.Equal(2, cache.Count);

        // The most recent group is still there: its next piece needs no decode; an evicted one is decoded again.
        await ReadAsync(plan, plan.Chunks.Single(c => c.RowStart == 5_200), cache);
        Assert.Equal(6, cache.Decodes);
        await ReadAsync(plan, plan.Chunks.Single(c => c.RowStart == 200), cache);
        Assert.Equal(7, cache.Decodes);
    }

    [Fact]
    public async Task Unused_entries_leave_after_the_idle_lifetime()
    {
        var path = await WriteAsync("idle.parquet", Data);
        var plan = await Dataset.PlanAsync(path, 900, Ct);
        var cache = new ParquetRowGroupCache(idleLifetime: TimeSpan.FromMilliseconds(200));
        await ReadAsync(plan, plan.Chunks[0], cache);
        Assert.Equal(1, cache.Count);

        while (cache.Count > 0)
        {
            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task Readers_waiting_for_a_decode_that_is_cancelled_decode_it_themselves()
    {
        var cache = new ParquetRowGroupCache();
        var key = new RowGroupKey("/in/a.parquet", 100, DateTime.UnixEpoch, 0, "x");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stopFirst = new CancellationTokenSource();
        var rows = new ColumnBatch([new BatchColumn("x", ColumnKind.Float32, new float[10])]);

        var first = cache.GetAsync(key, 0, 5, 10, async ct =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return rows;
        }, stopFirst.Token);
        await started.Task.WaitAsync(Ct);
        var decodedBySecond = 0;
        var second = cache.GetAsync(key, 5, 5, 10, _ =>
        {
            Interlocked.Increment(ref decodedBySecond);
            return Task.FromResult(rows);
        }, Ct);
        Assert.False(second.IsCompleted); // waiting for the first reader's decode, not decoding its own

        await stopFirst.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        Assert.Same(rows, await second.WaitAsync(Ct));
        Assert.Equal(1, decodedBySecond);
        Assert.Equal(1, cache.Decodes);
        Assert.Equal(1, cache.Count); // kept for the first half, still to be read

        Assert.Same(rows, await cache.GetAsync(key, 0, 5, 10, _ => throw new InvalidOperationException("decoded again"), Ct));
        Assert.Equal(0, cache.Count); // every row of it taken
    }

    private static async Task<List<SourceBatch>> ReadAsync(DatasetPlan plan, ChunkSpec chunk, ParquetRowGroupCache cache)
    {
        var batches = new List<SourceBatch>();
        await foreach (var batch in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 100_000, cache, Ct))
        {
            batches.Add(batch);
        }

        return batches;
    }
}
