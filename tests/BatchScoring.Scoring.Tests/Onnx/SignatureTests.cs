using System.Text.Json;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

public class SignatureTests
{
    [Fact]
    public void Mlp_signature_has_symbolic_batch_dim_and_feature_names()
    {
        var names = Enumerable.Range(0, 3).Select(i => $"feat_{i}").ToArray();
        using var model = ScoringModel.Load(SampleModels.Mlp([3, 4, 1], seed: 1, featureNames: names).Bytes, TestSupport.CpuOptions);

        var input = Assert.Single(model.Signature.Inputs);
        Assert.Equal("features", input.Name);
        Assert.Equal(TensorElementKind.Float, input.ElementType);
        Assert.Equal(ValueKind.Tensor, input.Kind);
        Assert.Equal([-1L, 3L], input.Shape);
        Assert.Equal("N", input.SymbolicDimensions![0]);
        var output = Assert.Single(model.Signature.Outputs);
        Assert.Equal("score", output.Name);
        Assert.Equal([-1L, 1L], output.Shape);
        Assert.Equal(names, model.Signature.FeatureNames);
        Assert.Equal(string.Join(',', names), model.Signature.Metadata["feature_names"]);
    }

    [Fact]
    public void Per_column_signature_reports_string_and_int64_inputs()
    {
        using var model = ScoringModel.Load(SampleModels.PerColumnModel().Bytes, TestSupport.CpuOptions);
        var inputs = model.Signature.Inputs.ToDictionary(i => i.Name);

        Assert.Equal(TensorElementKind.Float, inputs["tenure"].ElementType);
        Assert.Equal(TensorElementKind.Int64, inputs["num_services"].ElementType);
        Assert.Equal(TensorElementKind.String, inputs["contract"].ElementType);
        Assert.Equal([-1L, 1L], inputs["contract"].Shape);
        Assert.Null(model.Signature.FeatureNames);
        Assert.Equal("per_column", model.Signature.Metadata["model_kind"]);
    }

    [Fact]
    public void Tree_signature_reports_label_tensor_and_sequence_of_maps()
    {
        using var model = ScoringModel.Load(SampleModels.TreeEnsembleClassifier().Bytes, TestSupport.CpuOptions);
        var outputs = model.Signature.Outputs.ToDictionary(o => o.Name);

        Assert.Equal(TensorElementKind.Int64, outputs["label"].ElementType);
        Assert.Equal([-1L], outputs["label"].Shape);
        var probabilities = outputs["probabilities"];
        Assert.Equal(ValueKind.Sequence, probabilities.Kind);
        Assert.Equal(ValueKind.Map, probabilities.ElementKind);
        Assert.Equal(TensorElementKind.Int64, probabilities.KeyType);
        Assert.Equal(TensorElementKind.Float, probabilities.ElementType);
    }

    [Fact]
    public void Signature_round_trips_through_system_text_json()
    {
        using var model = ScoringModel.Load(SampleModels.TreeEnsembleClassifier(stringLabels: true).Bytes, TestSupport.CpuOptions);
        var json = JsonSerializer.Serialize(model.Signature);

        Assert.Contains("\"ElementType\":\"String\"", json, StringComparison.Ordinal);
        Assert.Contains("\"Kind\":\"Sequence\"", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize<ModelSignature>(json)!;
        Assert.Equal(model.Signature.Inputs.Select(i => i.ToString()), back.Inputs.Select(i => i.ToString()));
        Assert.Equal(model.Signature.Outputs.Select(i => i.ToString()), back.Outputs.Select(i => i.ToString()));
        Assert.Equal(model.Signature.Outputs[1].KeyType, back.Outputs[1].KeyType);
        Assert.Equal(model.Signature.Inputs[0].Shape, back.Inputs[0].Shape);
    }
}
