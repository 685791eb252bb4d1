using System.Text.Json;
using BatchScoring.IntegrationTests.Infrastructure;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>The local verbs' <c>--json</c>: one JSON document on stdout that names what was written, under the new flag names.</summary>
public sealed class JsonOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-json-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Generate_and_score_print_json_summaries()
    {
        var generate = await CliProcess.RunAsync(Ct, "generate", "--output-dir", _dir, "--rows", "3000", "--features", "4", "--hidden", "8", "--nan-every", "1000", "--json");
        Assert.True(generate.Exit == 0, generate.Stderr);
        using var generated = JsonDocument.Parse(generate.Stdout);
        var model = generated.RootElement.GetProperty("model").GetString()!;
        var data = generated.RootElement.GetProperty("data").GetString()!;
        Assert.True(File.Exists(model) && File.Exists(data), generate.Stdout);

        var output = Path.Combine(_dir, "scored.parquet");
        var score = await CliProcess.RunAsync(Ct, "score", "--model-file", model, "--input", data, "--output-parquet", output, "--key-column", "customer_id", "--json");
        Assert.True(score.Exit == 0, score.Stderr);
        using var summary = JsonDocument.Parse(score.Stdout);
        var root = summary.RootElement;
        Assert.Equal(output, root.GetProperty("output").GetString());
        Assert.Equal(3, root.GetProperty("failedRows").GetInt64());
        Assert.Equal(2997, root.GetProperty("scoredRows").GetInt64());
        Assert.True(File.Exists(root.GetProperty("failedRowsFile").GetString()));
        Assert.Equal(64, root.GetProperty("modelSha256").GetString()!.Length);
        Assert.True(File.Exists(output));
    }
}
