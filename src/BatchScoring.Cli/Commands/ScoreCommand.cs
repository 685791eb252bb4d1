using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

/// <summary>`batchscore score`: scores a file in this process, chunk by chunk, into a Parquet file. No servers needed.</summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model-file") { Description = "ONNX model file.", Required = true }.WithLegacy("--model");
        var input = new Option<string>("--input") { Description = "Parquet file, directory of Parquet files, or CSV file.", Required = true };
        var output = new Option<FileInfo>("--output-parquet") { Description = "Parquet file to write (written to a temporary name, then renamed).", Required = true }.WithLegacy("--output");
        var key = new Option<string?>("--key-column") { Description = "Column identifying each row; copied to the output and named in failures." };
        var passthrough = CliOptions.List("--passthrough", "Columns copied unchanged to the output (comma-separated or repeated).");
        var features = CliOptions.List("--features", "Feature columns in model order, for a model with one [N,F] input.");
        var batchRows = new Option<int>("--batch-rows") { Description = "Rows per inference call.", DefaultValueFactory = _ => 8192 };
        var chunkRows = new Option<int>("--chunk-rows") { Description = "Rows read at a time (bounds memory).", DefaultValueFactory = _ => 100_000 };
        var allowNonFinite = new Option<bool>("--allow-non-finite") { Description = "Pass NaN/Infinity features to the model instead of failing those rows." };
        var json = CliOptions.Json("Print the summary (rows scored and failed, seconds, output and failed-rows files) as JSON on stdout.");
        var command = new Command("score", "Score a file in-process with an ONNX model and write Parquet.")
        {
            model, input, output, key, passthrough, features, batchRows, chunkRows, allowNonFinite, json,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetRequiredValue(model), parse.GetRequiredValue(input), parse.GetRequiredValue(output), parse.GetValue(key),
            CliOptions.Values(parse, passthrough), CliOptions.ValuesOrNull(parse, features), parse.GetValue(batchRows), parse.GetValue(chunkRows),
            parse.GetValue(allowNonFinite), ct, parse.GetValue(json)));
        return command;
    }

    internal static async Task<int> RunAsync(
        FileInfo modelFile, string input, FileInfo output, string? keyColumn, IReadOnlyList<string> passthrough, IReadOnlyList<string>? features,
        int batchRows, int chunkRows, bool allowNonFinite, CancellationToken cancellationToken, bool json = false)
    {
        try
        {
            var plan = await Dataset.PlanAsync(input, chunkRows, cancellationToken);
            using var model = ScoringModel.Load(modelFile.FullName, new ScoringSessionOptions());
            Console.Error.WriteLine($"Model {modelFile.Name} (sha256 {model.Sha256[..12]}…) on {model.ExecutionProvider} ({model.ExecutionProviderReason}); {plan.TotalRows:N0} rows in {plan.Chunks.Count} chunks");
            var carried = new List<string>();
            if (keyColumn is not null)
            {
                _ = plan.FindColumn(keyColumn) ?? throw new InputMappingException($"Key column '{keyColumn}' is not in the input.");
                carried.Add(keyColumn);
            }

            foreach (var name in passthrough)
            {
                _ = plan.FindColumn(name) ?? throw new InputMappingException($"Passthrough column '{name}' is not in the input.");
                carried.Add(name);
            }

            var mapping = model.MapInputs(
                plan.Columns.Select(c => (c.Name, c.Kind)).ToArray(),
                new InputMappingRequest { KeyColumn = keyColumn, Passthrough = passthrough, Features = features });
            var outputs = model.DescribeOutputs();
            var read = carried.Concat(mapping.RequiredColumns).Distinct().Select(n => plan.FindColumn(n)!).ToArray();
            var outColumns = carried.Select(n => plan.FindColumn(n)! with { Nullable = true })
                .Concat(outputs.Select(o => new SourceColumn(o.Name, o.Kind, true))).ToArray();

            var failedPath = Path.ChangeExtension(output.FullName, ".failed.csv");
            await using var failedFile = new StreamWriter(failedPath);
            await failedFile.WriteLineAsync("row_number,key,column,reason");
            await using var writer = await ParquetBatchWriter.CreateAsync(output.FullName, outColumns, cancellationToken);
            long scored = 0, failed = 0;
            var watch = Stopwatch.StartNew();
            await CliProgress.RunAsync("Scoring", plan.TotalRows, async advance =>
            {
                var options = new ScoreOptions { AllowNonFinite = allowNonFinite };
                // Read the next chunk while this one is scored: I/O and inference overlap.
                Task<SourceBatch>? next = plan.Chunks.Count > 0 ? Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], read, cancellationToken) : null;
                for (var c = 0; c < plan.Chunks.Count; c++)
                {
                    var source = await next!;
                    next = c + 1 < plan.Chunks.Count ? Dataset.ReadChunkAsync(plan.Format, plan.Chunks[c + 1], read, cancellationToken) : null;
                    var parts = new List<ColumnBatch>();
                    var issues = source.Issues.GroupBy(i => i.Row).ToDictionary(g => g.Key, g => g.First());
                    for (var start = 0; start < source.Batch.RowCount; start += batchRows)
                    {
                        var count = Math.Min(batchRows, source.Batch.RowCount - start);
                        var slice = count == source.Batch.RowCount ? source.Batch : source.Batch.Slice(start, count);
                        var result = model.Score(slice, mapping, options, cancellationToken);
                        foreach (var failure in result.Failures)
                        {
                            var row = start + failure.Row;
                            var (column, reason) = issues.TryGetValue(row, out var issue) ? (issue.Column, issue.Reason) : (failure.Column, failure.Reason);
                            var keyText = keyColumn is null ? "" : Convert.ToString(slice[keyColumn].GetValue(failure.Row), CultureInfo.InvariantCulture);
                            await failedFile.WriteLineAsync($"{source.FirstRowNumber + row},{Csv(keyText)},{Csv(column)},{Csv(reason)}");
                        }

                        failed += result.Failures.Count;
                        if (result.ScoredRows.Length > 0)
                        {
                            var all = result.ScoredRows.Length == slice.RowCount;
                            var columns = carried.Select(n => all ? slice[n] : slice[n].Take(result.ScoredRows)).Concat(result.Outputs.Columns).ToArray();
                            parts.Add(new ColumnBatch(columns));
                            scored += result.ScoredRows.Length;
                        }

                        advance(count);
                    }

                    if (parts.Count > 0)
                    {
                        await writer.WriteAsync(ColumnBatch.Concat(parts), cancellationToken);
                    }
                }
            });

            await writer.CompleteAsync(cancellationToken);
            var seconds = watch.Elapsed.TotalSeconds;
            Console.Error.WriteLine($"Scored {scored:N0} rows, {failed:N0} failed, in {seconds:F1} s ({(scored + failed) / Math.Max(seconds, 1e-6):N0} rows/s) → {output.FullName}");
            if (failed > 0)
            {
                Console.Error.WriteLine($"Failed rows with reasons: {failedPath}");
            }
            else
            {
                await failedFile.DisposeAsync();
                File.Delete(failedPath);
            }

            if (json)
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(
                    new
                    {
                        output = output.FullName, scoredRows = scored, failedRows = failed, seconds = Math.Round(seconds, 3),
                        failedRowsFile = failed > 0 ? failedPath : null, modelSha256 = model.Sha256, executionProvider = model.ExecutionProvider.ToString(),
                    },
                    ApiClient.Json));
            }

            return 0;
        }
        catch (Exception ex) when (ex is DatasetException or InputMappingException or ModelLoadException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }

    private static string Csv(string? value) =>
        value is null ? "" : value.Contains(',') || value.Contains('"') || value.Contains('\n') ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;
}
