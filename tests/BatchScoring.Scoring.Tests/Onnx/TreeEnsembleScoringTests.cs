using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

public class TreeEnsembleScoringTests
{
    private const int Rows = 200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Int64_labels_and_probability_columns_match_the_trees()
    {
        var model = SampleModels.TreeEnsembleClassifier(featureCount: 4, treeCount: 5, seed: 3);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var x = TestSupport.RandomMatrix(Rows, 4, seed: 4, scale: 1.5f);
        var batch = new ColumnBatch([TestSupport.KeyColumn(Rows), .. TestSupport.FeatureColumns(x, Rows, 4)]);

        var described = scoring.DescribeOutputs();
        var result = scoring.Score(batch, scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" }), cancellationToken: Ct);

        Assert.Equal(
            [("label", ColumnKind.Int64), ("probability_0", ColumnKind.Float32), ("probability_1", ColumnKind.Float32), ("probability_2", ColumnKind.Float32)],
            described);
        Assert.Equal(described, result.Outputs.Columns.Select(c => (c.Name, c.Kind)));
        Assert.Empty(result.Failures);
        var labels = result.Outputs["label"].As<long>();
        var seen = new HashSet<long>();
        for (var i = 0; i < Rows; i++)
        {
            var (probabilities, best) = Reference.Trees(model, TestSupport.Row(x, i, 4));
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal(probabilities[c], result.Outputs[$"probability_{c}"].As<float>()[i], 1e-5);
            }

            var labelIndex = Array.IndexOf(model.ClassLabels!, labels[i]);
            Assert.True(labelIndex == best || Math.Abs(probabilities[labelIndex] - probabilities[best]) < 1e-6, $"row {i}: label {labels[i]}, expected {model.ClassLabels![best]}");
            seen.Add(labels[i]);
        }

        Assert.True(seen.Count >= 2, "the sample inputs should reach more than one class");
    }

    [Fact]
    public void String_labels_give_string_label_and_named_probability_columns()
    {
        var model = SampleModels.TreeEnsembleClassifier(featureCount: 3, seed: 8, stringLabels: true);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var x = TestSupport.RandomMatrix(50, 3, seed: 5);
        var lists = Enumerable.Range(0, 50).Select(i => TestSupport.Row(x, i, 3)).ToArray();
        var batch = new ColumnBatch([new BatchColumn("input", ColumnKind.Float32List, lists)]);

        var result = scoring.Score(batch, scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest()), cancellationToken: Ct);

        Assert.Equal(
            // ZipMap's string-keyed maps come back in key order.
            [("label", ColumnKind.String), ("probability_high", ColumnKind.Float32), ("probability_low", ColumnKind.Float32), ("probability_medium", ColumnKind.Float32)],
            result.Outputs.Columns.Select(c => (c.Name, c.Kind)));
        for (var i = 0; i < 50; i++)
        {
            var (probabilities, best) = Reference.Trees(model, lists[i]);
            Assert.Equal(model.StringClassLabels![best], result.Outputs["label"].As<string>()[i]);
            Assert.Equal(probabilities[2], result.Outputs["probability_high"].As<float>()[i], 1e-5);
        }
    }

    [Fact]
    public void Probability_columns_stay_consistent_across_batches()
    {
        var model = SampleModels.TreeEnsembleClassifier(seed: 3);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var x = TestSupport.RandomMatrix(30, 4, seed: 6);
        var batch = new ColumnBatch(TestSupport.FeatureColumns(x, 30, 4));
        var mapping = scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest());

        var first = scoring.Score(batch.Slice(0, 10), mapping, cancellationToken: Ct);
        var second = scoring.Score(batch.Slice(10, 20), mapping, cancellationToken: Ct);
        var whole = scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal(first.Outputs.Columns.Select(c => c.Name), second.Outputs.Columns.Select(c => c.Name));
        Assert.Equal(
            whole.Outputs["probability_1"].As<float>(),
            first.Outputs["probability_1"].As<float>().Concat(second.Outputs["probability_1"].As<float>()));
    }
}
