using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>
/// The chunks of one file read by one worker open it (parse its footer) once; a replaced file is opened anew, and a
/// reader whose chunk stopped part way is never handed to the next chunk.
/// </summary>
public sealed class ParquetReaderPoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-readers-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly GeneratedDatasetOptions Data = new() { Rows = 9_000, Features = 3, RowGroupRows = 3_000 };

    private async Task<(string Path, DatasetPlan Plan)> WriteAsync(string name, GeneratedDatasetOptions options)
    {
        var path = Path.Combine(_dir, name);
        await DatasetGenerator.WriteParquetAsync(path, options, Ct);
        return (path, await Dataset.PlanAsync(path, options.RowGroupRows, Ct));
    }

    [Fact]
    public async Task Chunks_of_one_file_read_in_turn_open_it_once_and_read_every_row()
    {
        var (_, plan) = await WriteAsync("rows.parquet", Data);
        var pool = new ParquetReaderPool();
        Assert.Equal(3, plan.Chunks.Count);

        var keys = new List<long>();
        foreach (var chunk in plan.Chunks)
        {
            keys.AddRange((await ReadAsync(plan, chunk, pool)).SelectMany(b => b.Batch[Data.KeyColumn].As<long>()));
        }

        Assert.Equal(Enumerable.Range(1, 9_000).Select(i => (long)i), keys);
        Assert.Equal(1, pool.Opens);
        Assert.Equal(1, pool.IdleCount);
    }

    [Fact]
    public async Task A_replaced_file_is_opened_anew_and_its_new_values_are_read()
    {
        var (path, plan) = await WriteAsync("replaced.parquet", Data);
        var pool = new ParquetReaderPool();
        await ReadAsync(plan, plan.Chunks[0], pool);

        // Same layout and length, other values, and a later write time.
        var other = Data with { Seed = Data.Seed + 1 };
        await DatasetGenerator.WriteParquetAsync(path, other, Ct);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddMinutes(1));

        var second = Assert.Single(await ReadAsync(plan, plan.Chunks[1], pool));
        Assert.Equal(2, pool.Opens);
        Assert.Equal(1, pool.IdleCount); // the stale reader was closed, not kept beside the new one
        var feature = GeneratedDatasetOptions.FeatureName(0);
        Assert.Equal(DatasetGenerator.CreateBatch(other, 3_000, 3_000)[feature].As<float>(), second.Batch[feature].As<float>());
    }

    [Fact]
    public async Task A_chunk_stopped_part_way_does_not_hand_its_reader_on()
    {
        var (_, plan) = await WriteAsync("stopped.parquet", Data);
        var pool = new ParquetReaderPool();
        var chunk = Assert.Single(ChunkPacking.Combine(plan.Chunks, 9_000)); // three row groups in one chunk

        await foreach (var batch in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 100_000, new ParquetRowGroupCache(), Ct, pool))
        {
            Assert.Equal(3_000, batch.Batch.RowCount);
            break;
        }

        Assert.Equal(0, pool.IdleCount);
        await ReadAsync(plan, chunk, pool);
        Assert.Equal(2, pool.Opens);
        Assert.Equal(1, pool.IdleCount);
    }

    [Fact]
    public async Task Idle_readers_beyond_the_capacity_are_closed_least_recently_used_first()
    {
        var (_, first) = await WriteAsync("first.parquet", Data);
        var (_, second) = await WriteAsync("second.parquet", Data);
        var pool = new ParquetReaderPool(capacity: 1);

        await ReadAsync(first, first.Chunks[0], pool);
        await ReadAsync(second, second.Chunks[0], pool);
        Assert.Equal(1, pool.IdleCount);

        await ReadAsync(second, second.Chunks[1], pool); // still open
        Assert.Equal(2, pool.Opens);
        await ReadAsync(first, first.Chunks[1], pool); // closed when the second file's reader came back
        Assert.Equal(3, pool.Opens);
    }

    private static async Task<List<SourceBatch>> ReadAsync(DatasetPlan plan, ChunkSpec chunk, ParquetReaderPool pool)
    {
        var batches = new List<SourceBatch>();
        await foreach (var batch in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 100_000, new ParquetRowGroupCache(), Ct, pool))
        {
            batches.Add(batch);
        }

        return batches;
    }
}
