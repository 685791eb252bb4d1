using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.ML.OnnxRuntime;
using Npgsql;

namespace BatchScoring.IntegrationTests.Inputs;

/// <summary>Jobs for a model whose input is an image tensor [N, 3, 32, 32], fed from a list column of 3·32·32 values.</summary>
public sealed class TensorInputJobTests(ServerFixture servers) : IDisposable
{
    private const int C = 3, H = 32, W = 32, Rows = 120;

    private readonly string _dir = Directory.CreateTempSubdirectory("bs-tensor-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task An_image_job_scores_every_row_like_a_separate_ONNX_Runtime_session_fed_the_same_tensor()
    {
        var model = ImageModels.Conv(C, H, W, filters: 4, seed: 11);
        await using var host = await ServiceTestHost.StartAsync(servers, "tensor", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("img", model.Bytes, Ct);
        var pixels = Enumerable.Range(0, Rows).Select(Image).ToArray();
        var input = await WriteAsync("images.parquet", pixels);

        var (response, status, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "img", Input = input, KeyColumn = "image_id", OutputTable = "image_scores", ChunkRows = 50, BatchRows = 16 }, Ct);

        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var final = await host.WaitForEndAsync(status!.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(Rows, final.ScoredRows);
        Assert.Equal(0, final.FailedRows);

        var expected = IndependentScores(model.Bytes, pixels);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand("select image_id, score from scoring.image_scores");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var seen = 0;
        while (await reader.ReadAsync(Ct))
        {
            Assert.Equal(expected[reader.GetInt64(0)], reader.GetFloat(1), 5);
            seen++;
        }

        Assert.Equal(Rows, seen);
    }

    [Fact]
    public async Task Lists_of_the_wrong_length_or_no_list_column_are_refused_at_submit_naming_the_expected_shape()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "tensorbad", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("img", ImageModels.Conv(C, H, W, filters: 2, seed: 1).Bytes, Ct);
        var shortLists = await WriteAsync("short.parquet", Enumerable.Range(0, 10).Select(r => Image(r)[..3000]).ToArray());
        var flat = Path.Combine(_dir, "flat.parquet");
        await DatasetGenerator.WriteParquetAsync(flat, new GeneratedDatasetOptions { Rows = 10, Features = 4 }, Ct);

        foreach (var (path, found) in new[] { (shortLists, "holds lists of 3,000 values"), (flat, "the data has no list column") })
        {
            var (response, _, body) = await host.SubmitAsync(new SubmitScoringJob { Model = "img", Input = path, KeyColumn = path == flat ? "customer_id" : "image_id", OutputTable = "t" }, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
            Assert.Contains("Model input 'image' expects float[N, 3, 32, 32] (3,072 values per row", body, StringComparison.Ordinal);
            Assert.Contains(found, body, StringComparison.Ordinal);
        }
    }

    private static float[] Image(int row)
    {
        var random = new Random(1000 + row);
        return Enumerable.Range(0, C * H * W).Select(_ => (float)random.NextDouble()).ToArray();
    }

    private async Task<string> WriteAsync(string name, float[][] pixels)
    {
        var path = Path.Combine(_dir, name);
        await using var writer = await ParquetBatchWriter.CreateAsync(
            path, [new SourceColumn("image_id", ColumnKind.Int64, false), new SourceColumn("pixels", ColumnKind.Float32List, true)], Ct);
        await writer.WriteAsync(new ColumnBatch(
        [
            new BatchColumn("image_id", ColumnKind.Int64, Enumerable.Range(0, pixels.Length).Select(i => (long)i).ToArray()),
            new BatchColumn("pixels", ColumnKind.Float32List, pixels),
        ]), Ct);
        await writer.CompleteAsync(Ct);
        return path;
    }

    /// <summary>A session of its own, fed one [rows, 3, 32, 32] tensor built here from the same values.</summary>
    private static Dictionary<long, float> IndependentScores(byte[] modelBytes, float[][] pixels)
    {
        using var session = new InferenceSession(modelBytes);
        var data = pixels.SelectMany(p => p).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(data, [pixels.Length, C, H, W]);
        using var outputs = session.Run(new RunOptions(), ["image"], [input], ["score"]);
        var scores = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        return Enumerable.Range(0, pixels.Length).ToDictionary(i => (long)i, i => scores[i]);
    }
}
