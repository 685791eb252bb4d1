using System.Diagnostics;
using System.Globalization;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Tests.Data;
using nietras.SeparatedValues;

var path = args[0];
if (path == "probe") { SepProbe.Run(); return; }
if (args.Length > 1 && args[1] == "micro") { Micro.Run(path); return; }
var chunkCount = int.Parse(args.Length > 1 ? args[1] : "4");
var rounds = int.Parse(args.Length > 2 ? args[2] : "3");
var ct = CancellationToken.None;
var plan = await Dataset.PlanAsync(path, 50_000, ct);
var step = Math.Max(1, plan.Chunks.Count / chunkCount);
var chunks = Enumerable.Range(0, chunkCount).Select(i => plan.Chunks[Math.Min(plan.Chunks.Count - 1, i * step)]).ToArray();
var columns = plan.Columns;
var columns32 = columns.Select(c => c.Kind == ColumnKind.Float64 ? c with { Kind = ColumnKind.Float32 } : c).ToArray();
Console.WriteLine($"file {path}: {plan.TotalRows:N0} rows, {plan.Chunks.Count} chunks; reading {chunks.Length} chunks ({chunks.Sum(c => c.RowCount):N0} rows), {columns.Count} columns; {rounds} rounds");

double Sum(ColumnBatch b) => b.Columns.Where(c => c.Kind == ColumnKind.Float64).Sum(c => c.As<double>().Sum()) + b.Columns.Where(c => c.Kind == ColumnKind.Float32).Sum(c => c.As<float>().Sum(x => (double)x));
var results = new Dictionary<string, List<double>>();
void Record(string name, double s) { if (!results.TryGetValue(name, out var l)) results[name] = l = []; l.Add(s); }

for (var round = 0; round < rounds; round++)
{
    foreach (var variant in (args.Length > 3 ? args[3] : "old,new,new-float32,sep").Split(','))
    {
        GC.Collect();
        var alloc = GC.GetTotalAllocatedBytes(true);
        var sw = Stopwatch.StartNew();
        double sum = 0;
        foreach (var chunk in chunks)
        {
            sum += variant switch
            {
                "old" => Sum(LegacyReader.Read(chunk, columns)),
                "new" => Sum((await Dataset.ReadChunkAsync(DatasetFormat.Csv, chunk, columns, ct)).Batch),
                "new-1col" => Sum((await Dataset.ReadChunkAsync(DatasetFormat.Csv, chunk, columns.Take(1).ToArray(), ct)).Batch),
                "sep-1col" => SepRead(chunk, columns.Take(1).ToArray()),
                "new-float32" => Sum((await Dataset.ReadChunkAsync(DatasetFormat.Csv, chunk, columns32, ct)).Batch),
                _ => SepRead(chunk, columns),
            };
        }

        var s = sw.Elapsed.TotalSeconds;
        Record(variant, s);
        Console.WriteLine($"round {round + 1} read {variant,-12} {s,7:F2} s  alloc {(GC.GetTotalAllocatedBytes(true) - alloc) / 1e6,8:F0} MB  checksum {sum:R}");
    }

    foreach (var variant in Environment.GetEnvironmentVariable("NOPLAN") is null ? new[] { "plan-old", "plan-new" } : [])
    {
        var sw = Stopwatch.StartNew();
        var offsets = variant == "plan-old" ? (await LegacyCsv.PlanAsync(path, 50_000, ct)).Offsets : (await Dataset.PlanAsync(path, 50_000, ct)).Chunks.Select(c => c.ByteOffset).ToList();
        var s = sw.Elapsed.TotalSeconds;
        Record(variant, s);
        Console.WriteLine($"round {round + 1} {variant,-17} {s,7:F2} s  offsets {offsets.Count} last {offsets[^1]}");
    }
}

foreach (var (name, list) in results)
{
    Console.WriteLine($"median {name,-12} {list.Order().ElementAt(list.Count / 2),7:F2} s");
}

foreach (var (a, b) in new[] { ("old", "new"), ("old", "new-float32"), ("sep", "new"), ("plan-old", "plan-new") })
{
    if (results.ContainsKey(a) && results.ContainsKey(b))
    {
        Console.WriteLine($"ratio {a}/{b} (median seconds) {Median(a) / Median(b):F2}x");
    }
}

double Median(string n) => results[n].Order().ElementAt(results[n].Count / 2);

static double SepRead(ChunkSpec chunk, IReadOnlyList<SourceColumn> columns)
{
    // Same work as the service's reader: every column into its typed array (ordinals = file order here).
    using var stream = File.OpenRead(chunk.Path);
    stream.Seek(chunk.ByteOffset, SeekOrigin.Begin);
    using var reader = Sep.Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true, CultureInfo = CultureInfo.InvariantCulture }).From(stream);
    var rows = (int)chunk.RowCount;
    var arrays = columns.Select(c => c.Kind switch { ColumnKind.Float64 => (Array)new double[rows], ColumnKind.Int64 => new long[rows], _ => new string[rows] }).ToArray();
    var row = 0;
    foreach (var r in reader)
    {
        if (row == rows) break;
        for (var c = 0; c < arrays.Length; c++)
        {
            switch (arrays[c])
            {
                case double[] d: d[row] = r[c].Parse<double>(); break;
                case long[] l: l[row] = r[c].Parse<long>(); break;
                case string[] s: s[row] = r[c].ToString(); break;
            }
        }

        row++;
    }

    return arrays.OfType<double[]>().Sum(a => a.Sum());
}
