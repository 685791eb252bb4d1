using System.Diagnostics;
using System.Globalization;
using BatchScoring.Scoring.Data;
using DuckDB.NET.Data;

namespace BatchScoring.Benchmarks;

/// <summary>
/// One input file of the light workload: the same rows, written the way pipelines write them (DuckDB Parquet with a
/// given row-group size, or CSV), or as the benchmark's own generator writes them (<c>gen</c>).
/// </summary>
public sealed record DatasetVariant(string Name, int? RowGroupRows, bool Csv)
{
    public static IReadOnlyList<DatasetVariant> Known { get; } =
    [
        new("rg8k", 8_192, false),
        new("rg16k", 16_384, false),
        new("rg128k", 131_072, false),
        new("csv", null, true),
        new("gen", null, false),
    ];

    public const string DefaultList = "rg8k,rg16k,rg128k,csv";

    public bool Generated => Name == "gen";

    public string Describe(int chunkRows) => Name switch
    {
        "gen" => $"benchmark generator (Parquet.Net), row groups of {chunkRows:N0}",
        _ when Csv => "CSV written by DuckDB (header, comma)",
        _ => $"Parquet written by DuckDB, ROW_GROUP_SIZE {RowGroupRows:N0}",
    };

    /// <summary>Parses a comma-separated list of variant names; null and a message when one is unknown or repeated.</summary>
    public static (IReadOnlyList<DatasetVariant>? Variants, string? Error) Parse(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0)
        {
            return (null, "--variants needs at least one of " + string.Join(", ", Known.Select(v => v.Name)) + ".");
        }

        var variants = new List<DatasetVariant>();
        foreach (var name in names)
        {
            var variant = Known.FirstOrDefault(v => string.Equals(v.Name, name, StringComparison.OrdinalIgnoreCase));
            if (variant is null)
            {
                return (null, $"--variants: unknown variant '{name}' (known: {string.Join(", ", Known.Select(v => v.Name))}).");
            }

            if (variants.Contains(variant))
            {
                return (null, $"--variants: '{variant.Name}' is given twice.");
            }

            variants.Add(variant);
        }

        return (variants, null);
    }
}

/// <summary>Writes the dataset variants with DuckDB from the generated base file (cached next to it).</summary>
internal static class DuckDbFiles
{
    /// <summary>
    /// The variant's file derived from <paramref name="basePath"/> (the generator's Parquet file): DuckDB reads it and
    /// writes it again with <c>COPY ... TO</c>, as a pipeline would. <paramref name="repeat"/> &gt; 1 repeats the rows
    /// with shifted keys (the large-job case).
    /// </summary>
    public static string Ensure(DatasetVariant variant, string basePath, int repeat = 1)
    {
        var dir = Path.GetDirectoryName(basePath)!;
        var suffix = repeat > 1 ? $"-x{repeat}" : "";
        var path = Path.Combine(dir, variant.Csv ? $"duckdb{suffix}.csv" : $"duckdb-{variant.Name}{suffix}.parquet");
        if (File.Exists(path))
        {
            BenchRunner.Log($"[{variant.Name}] dataset cached: {path}");
            return path;
        }

        var temp = path + ".tmp";
        var source = repeat > 1
            ? $"SELECT customer_id + k * (SELECT max(customer_id) + 1 FROM read_parquet({Quote(basePath)})) AS customer_id, * EXCLUDE (customer_id, k) "
              + $"FROM read_parquet({Quote(basePath)}), range({repeat.ToString(CultureInfo.InvariantCulture)}) r(k) ORDER BY k"
            : $"SELECT * FROM read_parquet({Quote(basePath)})";
        var format = variant.Csv
            ? "FORMAT csv, HEADER true"
            : $"FORMAT parquet, ROW_GROUP_SIZE {variant.RowGroupRows!.Value.ToString(CultureInfo.InvariantCulture)}";
        BenchRunner.Log($"[{variant.Name}] writing {path} with DuckDB ({format})");
        var watch = Stopwatch.StartNew();
        using (var connection = Open())
        {
            Execute(connection, $"COPY ({source}) TO {Quote(temp)} ({format})");
        }

        File.Move(temp, path, overwrite: true);
        BenchRunner.Log($"[{variant.Name}] written in {watch.Elapsed.TotalSeconds:F1} s ({new FileInfo(path).Length / 1048576.0:F0} MiB)");
        return path;
    }

    /// <summary>The first <paramref name="rows"/> rows of the base file as DuckDB writes them (the overhead case, warm-ups).</summary>
    public static string EnsureHead(string basePath, int rows, bool csv = false)
    {
        var path = Path.Combine(Path.GetDirectoryName(basePath)!, $"duckdb-head{rows}.{(csv ? "csv" : "parquet")}");
        if (!File.Exists(path))
        {
            using var connection = Open();
            Execute(connection, $"COPY (SELECT * FROM read_parquet({Quote(basePath)}) LIMIT {rows}) TO {Quote(path + ".tmp")} ({(csv ? "FORMAT csv, HEADER true" : "FORMAT parquet")})");
            File.Move(path + ".tmp", path, overwrite: true);
        }

        return path;
    }

    /// <summary>Row groups of a Parquet file as DuckDB sees them: count, smallest and largest.</summary>
    public static (long Count, long Min, long Max) RowGroups(string path)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText =
            $"SELECT count(*), min(n), max(n) FROM (SELECT DISTINCT row_group_id, row_group_num_rows AS n FROM parquet_metadata({Quote(path)}))";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture),
            Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture));
    }

    public static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        return connection;
    }

    public static string Quote(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Plans the file with the service's own reader and reads its first chunk: a file DuckDB writes that the service
    /// cannot read is a product bug, reported as the variant's error.
    /// </summary>
    public static async Task<(long Rows, int Chunks)> CheckReadableAsync(string path, int chunkRows, CancellationToken cancellationToken)
    {
        try
        {
            var plan = await Dataset.PlanAsync(path, chunkRows, cancellationToken);
            _ = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], plan.Columns, cancellationToken);
            return (plan.TotalRows, plan.Chunks.Count);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException($"the service's reader cannot read {path} as DuckDB wrote it (product bug): {ex.Message}", ex);
        }
    }
}
