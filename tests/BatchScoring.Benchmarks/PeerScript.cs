using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;
using Microsoft.ML.OnnxRuntime;
using Npgsql;

namespace BatchScoring.Benchmarks;

/// <summary>
/// The honest peer: what a competent engineer's short script does to score a file into PostgreSQL, in one process and
/// one thread of control. DuckDB streams the file (Parquet or CSV), ONNX Runtime scores 8,192-row batches with the
/// default session options, and one text COPY streams the rows into a table with a primary key, one transaction.
/// Run as <c>batchscore-bench peer</c> in its own process, so its start-up counts as the CLI's does for the service.
/// </summary>
public static class PeerScript
{
    public static Command Create()
    {
        var input = new Option<FileInfo>("--input") { Description = "Parquet or CSV file.", Required = true };
        var model = new Option<FileInfo>("--model") { Description = "ONNX model with one [N, F] float input and one float output.", Required = true };
        var table = new Option<string>("--table") { Description = "Results table to create (dropped first when it exists).", Required = true };
        var key = new Option<string>("--key-column") { DefaultValueFactory = _ => "customer_id" };
        var passthrough = new Option<string>("--passthrough") { DefaultValueFactory = _ => "region" };
        var batchRows = new Option<int>("--batch-rows") { DefaultValueFactory = _ => 8192 };
        var command = new Command("peer", "The single-process peer script the service is compared with (ConnectionStrings__Postgres from the environment); prints one JSON line.")
        {
            input, model, table, key, passthrough, batchRows,
        };
        command.SetAction(async (parse, ct) =>
        {
            var connection = Environment.GetEnvironmentVariable("ConnectionStrings__Postgres");
            if (string.IsNullOrEmpty(connection))
            {
                await Console.Error.WriteLineAsync("peer: set ConnectionStrings__Postgres.");
                return 2;
            }

            var result = await RunAsync(
                parse.GetRequiredValue(input).FullName, parse.GetRequiredValue(model).FullName, connection, parse.GetRequiredValue(table),
                parse.GetRequiredValue(key), parse.GetRequiredValue(passthrough), parse.GetValue(batchRows), ct);
            Console.WriteLine(JsonSerializer.Serialize(result, BenchCommand.JsonOptions).ReplaceLineEndings(" "));
            return 0;
        });
        return command;
    }

    public static async Task<PeerResult> RunAsync(
        string inputPath, string modelPath, string postgres, string table, string key, string passthrough, int batchRows, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        using var session = new InferenceSession(modelPath);
        var inputName = session.InputNames[0];
        var outputName = session.OutputNames[0];

        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        var scan = inputPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)
            ? $"read_csv({DuckDbFiles.Quote(inputPath)})"
            : $"read_parquet({DuckDbFiles.Quote(inputPath)})";
        // Feature columns are every column but the key and the passthrough, in file order (the model's order).
        var features = new List<string>();
        using (var describe = duck.CreateCommand())
        {
            describe.CommandText = $"DESCRIBE SELECT * FROM {scan}";
            using var columns = describe.ExecuteReader();
            while (columns.Read())
            {
                var name = columns.GetString(0);
                if (name != key && name != passthrough)
                {
                    features.Add(name);
                }
            }
        }

        var width = features.Count;
        using var query = duck.CreateCommand();
        query.CommandText = $"SELECT \"{key}\", \"{passthrough}\", {string.Join(", ", features.Select(f => $"CAST(\"{f}\" AS FLOAT)"))} FROM {scan}";

        await using var dataSource = NpgsqlDataSource.Create(postgres);
        await using var pg = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var create = pg.CreateCommand())
        {
            create.CommandText = $"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({key} bigint PRIMARY KEY, {passthrough} text, score real)";
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        var keys = new long[batchRows];
        var regions = new string?[batchRows];
        var values = new float[batchRows * width];
        long rows = 0;
        TimeSpan read = default, infer = default, copy = default;
        var clock = Stopwatch.StartNew();
        var line = new StringBuilder();
        using var runOptions = new RunOptions();
        await using (var writer = await pg.BeginTextImportAsync($"COPY {table} ({key}, {passthrough}, score) FROM STDIN", cancellationToken))
        {
            using var reader = query.ExecuteReader();
            var n = 0;
            while (true)
            {
                var more = reader.Read();
                if (more)
                {
                    keys[n] = reader.GetInt64(0);
                    regions[n] = reader.IsDBNull(1) ? null : reader.GetString(1);
                    var row = n * width;
                    for (var f = 0; f < width; f++)
                    {
                        values[row + f] = reader.GetFloat(2 + f);
                    }

                    n++;
                }

                if (n == batchRows || (!more && n > 0))
                {
                    read += clock.Elapsed;
                    clock.Restart();
                    var batch = n == batchRows ? values : values[..(n * width)];
                    using var tensor = OrtValue.CreateTensorValueFromMemory(batch, [n, width]);
                    using var outputs = session.Run(runOptions, [inputName], [tensor], [outputName]);
                    var scores = outputs[0].GetTensorDataAsSpan<float>();
                    infer += clock.Elapsed;
                    clock.Restart();
                    for (var i = 0; i < n; i++)
                    {
                        line.Clear()
                            .Append(keys[i].ToString(CultureInfo.InvariantCulture)).Append('\t')
                            .Append(regions[i] is { } r ? Escape(r) : "\\N").Append('\t')
                            .Append(scores[i].ToString(CultureInfo.InvariantCulture)).Append('\n');
                        writer.Write(line);
                    }

                    copy += clock.Elapsed;
                    clock.Restart();
                    rows += n;
                    n = 0;
                }

                if (!more)
                {
                    break;
                }
            }

            read += clock.Elapsed;
            clock.Restart();
        }

        // Disposing the writer ends the COPY: the server has every row once this returns.
        copy += clock.Elapsed;
        return new PeerResult(rows, total.Elapsed.TotalSeconds, read.TotalSeconds, infer.TotalSeconds, copy.TotalSeconds);
    }

    private static string Escape(string text) =>
        text.AsSpan().IndexOfAny("\\\t\n\r") < 0
            ? text
            : text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal)
                .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
}

/// <summary>What the peer reports: rows written and seconds, in total (process work after start-up) and per stage.</summary>
public sealed record PeerResult(long Rows, double Seconds, double ReadSeconds, double InferSeconds, double CopySeconds);
