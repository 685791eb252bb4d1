using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

/// <summary>Models that must not load: external data (could read any file), random bytes, broken protobuf.</summary>
public sealed class UnsafeModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-unsafe-model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void An_initializer_with_external_data_is_refused_before_onnx_runtime_sees_it()
    {
        var secret = Path.Combine(_dir, "weights.bin");
        File.WriteAllBytes(secret, new byte[16]);

        var ex = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(ExternalWeightsModel(secret), TestSupport.CpuOptions, source: "upload.onnx"));

        Assert.Contains("upload.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("tensor 'W'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("external", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void External_data_in_a_constant_node_attribute_is_refused()
    {
        var graph = new OnnxGraph("g")
            .AddInput("x", OnnxType.Tensor(OnnxDataType.Float, "N", 4))
            .AddOutput("y", OnnxType.Tensor(OnnxDataType.Float, "N", 4));
        graph.AddNode("Constant", [], ["c"]).With(OnnxAttribute.Tensor("value", OnnxTensor.ExternalFloat("hidden", [4], "/etc/passwd")));
        graph.AddNode("Add", ["x", "c"], ["y"]);

        var ex = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(new OnnxModel(graph).ToBytes(), TestSupport.CpuOptions));

        Assert.Contains("tensor 'hidden'", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("/etc/passwd", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_bytes_and_broken_protobuf_are_a_clear_model_load_exception()
    {
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var bytes = new byte[random.Next(1, 2048)];
            random.NextBytes(bytes);
            var ex = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(bytes, TestSupport.CpuOptions, source: "random.onnx"));
            Assert.Contains("random.onnx", ex.Message, StringComparison.Ordinal);
        }

        var valid = SampleModels.Mlp([4, 1], seed: 1).Bytes;
        var cut = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(valid[..^3], TestSupport.CpuOptions, source: "cut.onnx"));
        Assert.Contains("not a valid ONNX model", cut.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_self_contained_model_still_loads()
    {
        using var model = ScoringModel.Load(SampleModels.TreeEnsembleClassifier().Bytes, TestSupport.CpuOptions);
        Assert.NotEmpty(model.Signature.Inputs);
    }

    private static byte[] ExternalWeightsModel(string location)
    {
        var graph = new OnnxGraph("g")
            .AddInput("x", OnnxType.Tensor(OnnxDataType.Float, "N", 4))
            .AddOutput("y", OnnxType.Tensor(OnnxDataType.Float, "N", 4));
        graph.AddInitializer(OnnxTensor.ExternalFloat("W", [4], location));
        graph.AddNode("Add", ["x", "W"], ["y"]);
        return new OnnxModel(graph).ToBytes();
    }
}
