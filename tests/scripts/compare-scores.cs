// Compares one float column of two Parquet files row by row (used by gpu-check.sh: CUDA against CPU scores).
//   dotnet run tests/scripts/compare-scores.cs -- A.parquet B.parquet [column=score] [tolerance=0.002]
// Exit 0 when every row is within the tolerance, 1 when not, 2 on bad input.
#:project ../../src/BatchScoring.Scoring/BatchScoring.Scoring.csproj

using System.Globalization;
using BatchScoring.Scoring.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: compare-scores.cs A.parquet B.parquet [column] [tolerance]");
    return 2;
}

var column = args.Length > 2 ? args[2] : "score";
var tolerance = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 0.002;
try
{
    var a = await ReadColumnAsync(args[0], column);
    var b = await ReadColumnAsync(args[1], column);
    if (a.Length != b.Length)
    {
        Console.Error.WriteLine($"compare: {args[0]} has {a.Length:N0} rows, {args[1]} has {b.Length:N0}");
        return 1;
    }

    double worst = 0;
    long worstRow = -1, over = 0;
    for (var i = 0; i < a.Length; i++)
    {
        var diff = Math.Abs(a[i] - b[i]);
        if (double.IsNaN(diff) || diff > tolerance)
        {
            over++;
        }

        if (double.IsNaN(diff) || diff > worst)
        {
            (worst, worstRow) = (double.IsNaN(diff) ? double.PositiveInfinity : diff, i);
        }
    }

    var worstText = worstRow < 0 ? "" : $" at row {worstRow:N0} ({a[worstRow]:G9} vs {b[worstRow]:G9})";
    Console.WriteLine($"compare: {a.Length:N0} rows of '{column}', largest difference {worst:G3}{worstText}, {over:N0} over {tolerance:G3}");
    return over == 0 ? 0 : 1;
}
catch (DatasetException ex)
{
    Console.Error.WriteLine($"compare: {ex.Message}");
    return 2;
}

static async Task<double[]> ReadColumnAsync(string path, string name)
{
    var plan = await Dataset.PlanAsync(path, 1_000_000, CancellationToken.None);
    var column = plan.FindColumn(name) ?? throw new DatasetException($"'{path}' has no column '{name}'.");
    var values = new List<double>();
    foreach (var chunk in plan.Chunks)
    {
        var batch = (await Dataset.ReadChunkAsync(plan.Format, chunk, [column], CancellationToken.None)).Batch;
        var read = batch[name];
        for (var row = 0; row < batch.RowCount; row++)
        {
            values.Add(read.IsNull(row) ? double.NaN : Convert.ToDouble(read.GetValue(row), CultureInfo.InvariantCulture));
        }
    }

    return values.ToArray();
}
