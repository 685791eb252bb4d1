// What the per-row lineage columns (job_id, model_name, model_version, scored_at and the job_id index) cost a job's
// binary COPY, against a table with only the key, a passthrough column and the score (docs/chunks.md, "Lineage cost").
//   dotnet run tests/scripts/lineage-copy-cost.cs -- [connection string] [rows=1000000] [repeats=3]
// Default connection: $BATCHSCORING_BENCH_PG, else the test servers' PostgreSQL (127.0.0.1:55432). It works in a
// database of its own, dropped at the end. Rows go in as a job writes them: COPY batches of 8,192 rows, one transaction
// per 50,000-row chunk. A measurement, not a test: run it on a quiet machine and compare the ratios.
#:project ../../src/BatchScoring.Data/BatchScoring.Data.csproj

using System.Diagnostics;
using System.Globalization;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using Npgsql;

var connectionString = args.Length > 0 && args[0].Length > 0 ? args[0]
    : Environment.GetEnvironmentVariable("BATCHSCORING_BENCH_PG") ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
var rows = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000_000;
var repeats = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
const int BatchRows = 8_192;
const int ChunkRows = 50_000;

// A database of its own, migrated like the service's (the results table's view joins scoring.jobs), dropped at the end.
var database = $"lineage_bench_{Guid.NewGuid():N}"[..24];
const string schema = "bench";
await using var server = NpgsqlDataSource.Create(connectionString);
await using (var create = server.CreateCommand($"CREATE DATABASE {database}"))
{
    await create.ExecuteNonQueryAsync();
}

await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { Database = database, Pooling = false }.ConnectionString);
var keys = Enumerable.Range(1, rows).Select(i => (long)i).ToArray();
string?[] regionNames = ["north", "south", "east", "west"];
var regions = Enumerable.Range(0, rows).Select(i => regionNames[i % 4]).ToArray();
var random = new Random(1);
var scores = Enumerable.Range(0, rows).Select(_ => random.NextSingle()).ToArray();
var context = new ResultRowContext(Guid.CreateVersion7(), null, "lineage_bench_model", 1, DateTimeOffset.UtcNow);

var variants = new (string Name, string Description)[]
{
    ("service", "the results table as jobs write it: key, region, score + lineage columns (filled by column defaults) + job_id and key indexes"),
    ("no_job_index", "the same table without the job_id index"),
    ("per_row", "the same columns and indexes, lineage sent in every row by the client (no column defaults)"),
    ("no_lineage", "key, region, score and the key index only"),
};
var results = variants.ToDictionary(v => v.Name, _ => new List<double>());
var sizes = new Dictionary<string, long>();
try
{
    await DatabaseMigrator.MigrateAsync(dataSource, CancellationToken.None);
    await ExecuteAsync($"CREATE SCHEMA {schema}");
    for (var repeat = 0; repeat < repeats; repeat++)
    {
        foreach (var (name, _) in variants)
        {
            var table = $"{schema}.{name}";
            await ExecuteAsync($"DROP TABLE IF EXISTS {table} CASCADE");
            var seconds = name switch
            {
                "no_lineage" => await BareAsync(table),
                "per_row" => await PerRowAsync(table),
                _ => await ServiceAsync(table, dropJobIndex: name == "no_job_index"),
            };
            results[name].Add(seconds);
            await using var size = dataSource.CreateCommand($"SELECT pg_total_relation_size('{table}')");
            sizes[name] = (long)(await size.ExecuteScalarAsync())!;
        }
    }
}
finally
{
    await using var drop = server.CreateCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
    await drop.ExecuteNonQueryAsync();
}

var baseline = Median(results["no_lineage"]);
Console.WriteLine($"{rows:N0} rows, COPY batches of {BatchRows:N0}, a transaction per {ChunkRows:N0} rows, median of {repeats}:");
Console.WriteLine($"{"variant",-14} {"seconds",8} {"rows/s",10} {"vs no_lineage",14} {"bytes/row",10}");
foreach (var (name, description) in variants)
{
    var median = Median(results[name]);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-14} {median,8:0.000} {rows / median,10:N0} {median / baseline,13:0.00}x {sizes[name] / (double)rows,10:0.0}   {description}"));
}

return 0;

async Task<double> ServiceAsync(string table, bool dropJobIndex)
{
    var definition = ResultTable.Define(
        table, new ResultColumn("customer_id", ColumnKind.Int64), [new ResultColumn("region", ColumnKind.String)], [new ResultColumn("score", ColumnKind.Float32)]);
    await definition.EnsureCreatedAsync(dataSource, CancellationToken.None);
    if (dropJobIndex)
    {
        await ExecuteAsync($"DROP INDEX {schema}.{table.Split('.')[1]}_job_id_idx");
    }

    return await TimedChunksAsync((connection, start, count) => definition.CopyAsync(connection, context, Batch(start, count), CancellationToken.None));
}

async Task<double> BareAsync(string table)
{
    await ExecuteAsync($"CREATE TABLE {table} (customer_id bigint NULL, region text NULL, score real NULL); CREATE INDEX ON {table} (customer_id)");
    return await TimedChunksAsync(async (connection, start, count) =>
    {
        await using var importer = await connection.BeginBinaryImportAsync($"COPY {table} (customer_id, region, score) FROM STDIN (FORMAT BINARY)");
        for (var i = start; i < start + count; i++)
        {
            await importer.StartRowAsync();
            await importer.WriteAsync(keys[i], NpgsqlTypes.NpgsqlDbType.Bigint);
            await importer.WriteAsync(regions[i], NpgsqlTypes.NpgsqlDbType.Text);
            await importer.WriteAsync(scores[i], NpgsqlTypes.NpgsqlDbType.Real);
        }

        return await importer.CompleteAsync();
    });
}

async Task<double> PerRowAsync(string table)
{
    await ExecuteAsync(
        $"CREATE TABLE {table} (customer_id bigint NULL, job_id uuid NULL, model_name text NOT NULL, model_version integer NOT NULL, "
        + $"scored_at timestamptz NOT NULL, region text NULL, score real NULL); CREATE INDEX ON {table} (job_id); CREATE INDEX ON {table} (customer_id)");
    var scoredAt = context.ScoredAt.UtcDateTime;
    return await TimedChunksAsync(async (connection, start, count) =>
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            $"COPY {table} (customer_id, job_id, model_name, model_version, scored_at, region, score) FROM STDIN (FORMAT BINARY)");
        for (var i = start; i < start + count; i++)
        {
            await importer.StartRowAsync();
            await importer.WriteAsync(keys[i], NpgsqlTypes.NpgsqlDbType.Bigint);
            await importer.WriteAsync(context.JobId!.Value, NpgsqlTypes.NpgsqlDbType.Uuid);
            await importer.WriteAsync(context.ModelName, NpgsqlTypes.NpgsqlDbType.Text);
            await importer.WriteAsync(context.ModelVersion, NpgsqlTypes.NpgsqlDbType.Integer);
            await importer.WriteAsync(scoredAt, NpgsqlTypes.NpgsqlDbType.TimestampTz);
            await importer.WriteAsync(regions[i], NpgsqlTypes.NpgsqlDbType.Text);
            await importer.WriteAsync(scores[i], NpgsqlTypes.NpgsqlDbType.Real);
        }

        return await importer.CompleteAsync();
    });
}

async Task<double> TimedChunksAsync(Func<NpgsqlConnection, int, int, Task<ulong>> copy)
{
    await using var connection = await dataSource.OpenConnectionAsync();
    var watch = Stopwatch.StartNew();
    for (var chunk = 0; chunk < rows; chunk += ChunkRows)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        var end = Math.Min(rows, chunk + ChunkRows);
        for (var start = chunk; start < end; start += BatchRows)
        {
            await copy(connection, start, Math.Min(BatchRows, end - start));
        }

        await transaction.CommitAsync();
    }

    return watch.Elapsed.TotalSeconds;
}

ColumnBatch Batch(int start, int count) => new(
[
    new BatchColumn("customer_id", ColumnKind.Int64, keys.AsSpan(start, count).ToArray()),
    new BatchColumn("region", ColumnKind.String, regions.AsSpan(start, count).ToArray()),
    new BatchColumn("score", ColumnKind.Float32, scores.AsSpan(start, count).ToArray()),
]);

async Task ExecuteAsync(string sql)
{
    await using var command = dataSource.CreateCommand(sql);
    await command.ExecuteNonQueryAsync();
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}
