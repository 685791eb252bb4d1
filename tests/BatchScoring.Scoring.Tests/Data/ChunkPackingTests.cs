using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

public sealed class ChunkPackingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-pack-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Whole_slices_are_packed_until_the_next_would_exceed_the_budget_and_single_slices_keep_their_fields()
    {
        // A row group of 2,500 split at 1,000 (1,000 + 1,000 + 500), then groups of 300, 300, 300 and 900.
        ChunkSpec[] slices =
        [
            new(0, "a", 0, 0, 1_000), new(1, "a", 0, 1_000, 1_000), new(2, "a", 0, 2_000, 500),
            new(3, "a", 1, 2_500, 300), new(4, "a", 2, 2_800, 300), new(5, "b", 0, 0, 300), new(6, "b", 1, 300, 900),
        ];

        var chunks = ChunkPacking.Combine(slices, 1_000);

        Assert.Equal([0, 1, 2, 3, 4], chunks.Select(c => c.Index));
        Assert.Equal([1_000L, 1_000, 800, 600, 900], chunks.Select(c => c.RowCount));
        Assert.Null(chunks[0].Ranges);
        Assert.Equal(slices[1] with { Index = 1 }, chunks[1]);
        Assert.Equal([(0, 2_000L, 500L), (1, 2_500, 300)], chunks[2].Ranges!.Select(r => (r.RowGroup ?? -1, r.RowStart, r.RowCount)));
        Assert.Equal(["a", "b"], chunks[3].ReadRanges().Select(r => r.Path));
        Assert.Equal(("a", (int?)2, 2_800L), (chunks[3].Path, chunks[3].RowGroup, chunks[3].RowStart));
        Assert.Equal(slices.Sum(s => s.RowCount), chunks.Sum(c => c.RowCount));
    }

    [Fact]
    public async Task A_chunk_of_many_row_groups_streams_one_row_group_at_a_time_in_order()
    {
        var path = Path.Combine(_dir, "groups.parquet");
        var options = new GeneratedDatasetOptions { Rows = 5_000, Features = 2, RowGroupRows = 250 };
        await DatasetGenerator.WriteParquetAsync(path, options, Ct);
        var plan = await Dataset.PlanAsync(path, 2_000, Ct);
        var chunks = ChunkPacking.Combine(plan.Chunks, 2_000);
        Assert.Equal(3, chunks.Count);
        Assert.Equal(8, chunks[0].Ranges!.Count);

        var keys = new List<long>();
        foreach (var chunk in chunks)
        {
            var slices = new List<SourceBatch>();
            await foreach (var slice in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 100_000, StorageRoots.Unconfined, Ct))
            {
                slices.Add(slice);
            }

            // One batch per row group, never the chunk at once; each knows where it starts in the file.
            Assert.All(slices, s => Assert.Equal(250, s.Batch.RowCount));
            Assert.Equal(chunk.ReadRanges().Select(r => r.RowStart), slices.Select(s => s.FirstRowNumber));
            keys.AddRange(slices.SelectMany(s => s.Batch[options.KeyColumn].As<long>()));

            var whole = await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, Ct);
            Assert.Equal(slices.SelectMany(s => s.Batch[options.KeyColumn].As<long>()), whole.Batch[options.KeyColumn].As<long>());
        }

        Assert.Equal(Enumerable.Range(1, 5_000).Select(i => (long)i), keys);
    }

    [Fact]
    public async Task Csv_chunks_spanning_files_stream_in_slices_with_issue_rows_counted_from_each_slice()
    {
        var a = Path.Combine(_dir, "a.csv");
        var b = Path.Combine(_dir, "b.csv");
        await File.WriteAllTextAsync(a, "id,x\n" + string.Concat(Enumerable.Range(0, 30).Select(i => $"{i},{i}.5\n")), Ct);
        await File.WriteAllTextAsync(b, "id,x\n" + string.Concat(Enumerable.Range(100, 30).Select(i => i == 112 ? $"{i},bad\n" : $"{i},{i}.5\n")), Ct);
        var plan = await Dataset.PlanAsync(_dir, 100, Ct);
        var chunk = Assert.Single(ChunkPacking.Combine(plan.Chunks, 100));
        Assert.Equal(2, chunk.Ranges!.Count);

        var slices = new List<SourceBatch>();
        await foreach (var slice in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 8, StorageRoots.Unconfined, Ct))
        {
            slices.Add(slice);
        }

        Assert.Equal([8, 8, 8, 6, 8, 8, 8, 6], slices.Select(s => s.Batch.RowCount));
        Assert.Equal([0L, 8, 16, 24, 0, 8, 16, 24], slices.Select(s => s.FirstRowNumber));
        var issue = Assert.Single(slices.SelectMany(s => s.Issues));
        Assert.Equal(("x", 4), (issue.Column, issue.Row)); // row 12 of b.csv, in its slice starting at row 8
        Assert.Equal(Enumerable.Range(0, 30).Concat(Enumerable.Range(100, 30)).Select(i => (long)i), slices.SelectMany(s => s.Batch["id"].As<long>()));
    }
}
