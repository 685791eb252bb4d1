// Reading a file's chunks the way a worker does (2 chunks at once), under the old and the new row-group policy,
// alternated in one run (docs/chunks.md, "Row groups larger than the chunk size"):
//   dotnet run tests/scripts/rowgroup-read-ab.cs -- [file.parquet] [chunk rows=50000] [rounds=5]
// Without a file it writes one like the benchmark's rg128k variant (1,000,000 rows, 64 features, 131,072-row row
// groups) with the generator. Policies:
//   old    every row group larger than the chunk size cut into chunk-size pieces, each piece read on its own (its row
//          group decoded whole for each piece, as before)
//   new    the service's plan (row groups up to 4 × the chunk size whole), read as the worker reads a chunk
//   split  the old pieces read as the worker reads a chunk now (pieces of one row group share one decode)
// A measurement, not a test: only the ratios mean anything, and only on the machine and load they were taken on.
#:project ../../src/BatchScoring.Scoring/BatchScoring.Scoring.csproj

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using BatchScoring.Scoring.Data;

var path = args.Length > 0 && args[0].Length > 0 ? args[0] : null;
var chunkRows = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 50_000;
var rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5;
const int Workers = 2;

if (path is null)
{
    path = Path.Combine(Path.GetTempPath(), "rowgroup-read-ab-1000000r-64f-rg131072.parquet");
    if (!File.Exists(path))
    {
        Console.WriteLine($"writing {path}");
        await DatasetGenerator.WriteParquetAsync(path + ".tmp", new GeneratedDatasetOptions { Rows = 1_000_000, Features = 64, RowGroupRows = 131_072 }, CancellationToken.None);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}

var plan = await Dataset.PlanAsync(path, chunkRows, CancellationToken.None);
var newChunks = ChunkPacking.Combine(plan.Chunks, chunkRows);

// The old planner: every slice (here a whole row group or a piece of a larger one) cut at chunkRows, then packed.
var pieces = new List<ChunkSpec>();
foreach (var slice in plan.Chunks)
{
    for (long offset = 0; offset < slice.RowCount; offset += chunkRows)
    {
        pieces.Add(slice with { Index = pieces.Count, RowStart = slice.RowStart + offset, RowCount = Math.Min(chunkRows, slice.RowCount - offset) });
    }
}

var oldChunks = ChunkPacking.Combine(pieces, chunkRows);
Console.WriteLine($"{path}: {plan.TotalRows:N0} rows, {plan.Columns.Count} columns, chunk rows {chunkRows:N0}, {Workers} chunks read at once");
Console.WriteLine($"chunks: old {oldChunks.Count}, new {newChunks.Count}");

var variants = new (string Name, IReadOnlyList<ChunkSpec> Chunks, bool WorkerPath)[]
{
    ("old", oldChunks, false),
    ("new", newChunks, true),
    ("split", oldChunks, true),
};
var seconds = variants.ToDictionary(v => v.Name, _ => new List<double>());

// Warm-up (JIT, page cache), then rounds with the order reversed every other round.
foreach (var variant in variants)
{
    await ReadAllAsync(variant.Chunks, variant.WorkerPath);
}

for (var round = 0; round < rounds; round++)
{
    var order = round % 2 == 0 ? variants : variants.Reverse().ToArray();
    foreach (var (name, chunks, workerPath) in order)
    {
        var watch = Stopwatch.StartNew();
        var rows = await ReadAllAsync(chunks, workerPath);
        seconds[name].Add(watch.Elapsed.TotalSeconds);
        if (rows != plan.TotalRows)
        {
            throw new InvalidOperationException($"{name} read {rows} rows, not {plan.TotalRows}");
        }
    }

    Console.WriteLine($"round {round + 1}: " + string.Join(", ", variants.Select(v => $"{v.Name} {seconds[v.Name][^1]:F2} s")));
}

var oldMedian = Median(seconds["old"]);
Console.WriteLine($"{"policy",-6} {"median s",9} {"rows/s",12} {"old/this",9}");
foreach (var (name, _, _) in variants)
{
    var median = Median(seconds[name]);
    Console.WriteLine($"{name,-6} {median,9:F2} {plan.TotalRows / median,12:N0} {oldMedian / median,9:F2}");
}

async Task<long> ReadAllAsync(IReadOnlyList<ChunkSpec> chunks, bool workerPath)
{
    var queue = new ConcurrentQueue<ChunkSpec>(chunks);
    long rows = 0;
    await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
    {
        while (queue.TryDequeue(out var chunk))
        {
            if (workerPath)
            {
                await foreach (var slice in Dataset.ReadSlicesAsync(plan.Format, chunk, plan.Columns, 8_192, StorageRoots.Unconfined, CancellationToken.None))
                {
                    Interlocked.Add(ref rows, slice.Batch.RowCount);
                }
            }
            else
            {
                Interlocked.Add(ref rows, (await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, CancellationToken.None)).Batch.RowCount);
            }
        }
    })));
    return rows;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}
