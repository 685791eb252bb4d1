using System.CommandLine;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Cli.Commands;

/// <summary>`batchscore generate`: writes a sample MLP model and a matching synthetic dataset.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--output-dir") { Description = "Directory for model.onnx and data.parquet.", DefaultValueFactory = _ => new DirectoryInfo("samples") }.WithLegacy("--out");
        var rows = new Option<long>("--rows") { Description = "Rows of data.", DefaultValueFactory = _ => 100_000 };
        var features = new Option<int>("--features") { Description = "Float features per row.", DefaultValueFactory = _ => 64 };
        var hidden = new Option<int>("--hidden") { Description = "Width of the two hidden layers.", DefaultValueFactory = _ => 256 };
        var rowGroup = new Option<int>("--row-group-rows") { Description = "Rows per Parquet row group.", DefaultValueFactory = _ => 50_000 };
        var nanEvery = new Option<int>("--nan-every") { Description = "Put a NaN in every n-th row (poison rows; 0 = none).", DefaultValueFactory = _ => 0 };
        var json = CliOptions.Json();
        var command = new Command("generate", "Write a sample ONNX model (MLP) and a synthetic Parquet dataset for it.")
        {
            output, rows, features, hidden, rowGroup, nanEvery, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var dir = parse.GetRequiredValue(output);
            dir.Create();
            var f = parse.GetValue(features);
            var h = parse.GetValue(hidden);
            var names = Enumerable.Range(0, f).Select(GeneratedDatasetOptions.FeatureName).ToArray();
            var mlp = SampleModels.Mlp([f, h, h, 1], seed: 7, featureNames: names);
            var modelPath = Path.Combine(dir.FullName, "model.onnx");
            await File.WriteAllBytesAsync(modelPath, mlp.Bytes, ct);
            var dataPath = Path.Combine(dir.FullName, "data.parquet");
            var options = new GeneratedDatasetOptions
            {
                Rows = parse.GetValue(rows), Features = f, RowGroupRows = parse.GetValue(rowGroup), NaNEvery = parse.GetValue(nanEvery),
            };
            await DatasetGenerator.WriteParquetAsync(dataPath, options, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { model = modelPath, data = dataPath }, ApiClient.Json));
            }
            else
            {
                Console.WriteLine(modelPath);
                Console.WriteLine(dataPath);
            }

            return 0;
        });
        return command;
    }
}
