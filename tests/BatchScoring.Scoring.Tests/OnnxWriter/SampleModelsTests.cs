using BatchScoring.Scoring.OnnxWriter;
using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Tests.OnnxWriter;

public class SampleModelsTests
{
    [Fact]
    public void Mlp_loads_in_onnx_runtime_with_expected_io_and_metadata()
    {
        var names = Enumerable.Range(0, 8).Select(i => $"x{i}").ToArray();
        var model = SampleModels.Mlp([8, 16, 1], seed: 3, featureNames: names);
        using var session = new InferenceSession(model.Bytes);

        Assert.Equal(["features"], session.InputNames);
        Assert.Equal(["score"], session.OutputNames);
        Assert.Equal([-1, 8], session.InputMetadata["features"].Dimensions);
        Assert.Equal("N", session.InputMetadata["features"].SymbolicDimensions[0]);
        Assert.Equal("batchscoring", session.ModelMetadata.ProducerName);
        Assert.Equal(string.Join(',', names), session.ModelMetadata.CustomMetadataMap["feature_names"]);
    }

    [Fact]
    public void Mlp_is_deterministic_from_its_seed()
    {
        var a = SampleModels.Mlp([4, 3, 1], seed: 11);
        var b = SampleModels.Mlp([4, 3, 1], seed: 11);
        var c = SampleModels.Mlp([4, 3, 1], seed: 12);
        Assert.Equal(a.Bytes, b.Bytes);
        Assert.NotEqual(a.Bytes, c.Bytes);
        Assert.Equal(12, a.Weights[0].Length);
        Assert.All(a.Weights[0], w => Assert.InRange(w, -0.5f, 0.5f));
    }

    [Fact]
    public void Mlp_runs_in_onnx_runtime_and_matches_reference()
    {
        var model = SampleModels.Mlp([5, 7, 2], seed: 5);
        using var session = new InferenceSession(model.Bytes);
        var x = TestSupport.RandomMatrix(3, 5, seed: 1);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [3, 5]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["features"], [input], ["score"]);
        var y = outputs.First().GetTensorDataAsSpan<float>().ToArray();
        for (var r = 0; r < 3; r++)
        {
            var expected = Reference.Mlp(model, TestSupport.Row(x, r, 5));
            Assert.Equal(expected[0], y[r * 2], 1e-5);
            Assert.Equal(expected[1], y[(r * 2) + 1], 1e-5);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Tree_ensemble_loads_with_label_and_zipmap_outputs(bool stringLabels)
    {
        var model = SampleModels.TreeEnsembleClassifier(stringLabels: stringLabels);
        using var session = new InferenceSession(model.Bytes);
        Assert.Equal(["label", "probabilities"], session.OutputNames);
        Assert.Equal(OnnxValueType.ONNX_TYPE_SEQUENCE, session.OutputMetadata["probabilities"].OnnxValueType);
        Assert.Equal(3, model.Trees.Count);
        Assert.Equal(3, model.ClassCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Per_column_model_loads_with_one_input_per_column(bool strict)
    {
        var model = SampleModels.PerColumnModel(strictCategories: strict);
        using var session = new InferenceSession(model.Bytes);
        Assert.Equal(["tenure", "monthly_charges", "num_services", "contract"], session.InputNames);
        Assert.Equal(6, model.Weights.Length);
        Assert.Equal(6, model.FeatureOrder.Count);
    }
}
