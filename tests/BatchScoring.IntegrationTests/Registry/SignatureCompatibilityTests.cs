using BatchScoring.Application;
using BatchScoring.Contracts;

namespace BatchScoring.IntegrationTests.Registry;

/// <summary>The compatibility rules of docs/model-registry.md, on hand-written signatures (no server, no model file).</summary>
public sealed class SignatureCompatibilityTests
{
    private static readonly string[] FourFeatures = ["age", "tenure", "spend", "calls"];

    private static ModelTensorInfo Tensor(string name, string type, params long[] shape) => new(name, "tensor", type, shape);

    private static ModelSignatureInfo Signature(IReadOnlyList<ModelTensorInfo> inputs, IReadOnlyList<ModelTensorInfo> outputs, IReadOnlyList<string>? features = null) =>
        new(inputs, outputs, features, new Dictionary<string, string>());

    private static ModelSignatureInfo Churn(long width = 4, string type = "float", IReadOnlyList<string>? features = null) =>
        Signature([Tensor("features", type, -1, width)], [Tensor("score", "float", -1, 1)], features ?? FourFeatures);

    [Fact]
    public void Identical_signatures_are_compatible_with_an_empty_diff()
    {
        var diff = SignatureCompatibility.Compare(Churn(), Churn());

        Assert.True(diff.Compatible);
        Assert.Empty(diff.Inputs.Added);
        Assert.Empty(diff.Inputs.Removed);
        Assert.Empty(diff.Inputs.Changed);
        Assert.Empty(diff.Outputs.Changed);
        Assert.Null(diff.FeatureNames);
        Assert.Equal("", diff.Summary);
    }

    [Fact]
    public void A_changed_input_width_or_element_type_is_breaking()
    {
        var wider = SignatureCompatibility.Compare(Churn(), Churn(width: 5, features: [.. FourFeatures, "extra"]));
        var change = Assert.Single(wider.Inputs.Changed);
        Assert.False(wider.Compatible);
        Assert.True(change.Breaking);
        Assert.Equal(["shape [N, 4] → [N, 5]"], change.Differences);
        Assert.Equal(FourFeatures, wider.FeatureNames!.From);
        Assert.Equal("input 'features' shape [N, 4] → [N, 5]; feature names [age, tenure, spend, calls] → [age, tenure, spend, calls, extra]", wider.Summary);

        var doubles = SignatureCompatibility.Compare(Churn(), Churn(type: "double"));
        Assert.False(doubles.Compatible);
        Assert.Equal(["elementType float → double"], Assert.Single(doubles.Inputs.Changed).Differences);
    }

    [Fact]
    public void An_input_that_accepts_more_is_a_non_breaking_change_but_one_that_accepts_less_is_breaking()
    {
        var fixedWidth = Signature([Tensor("x", "float", -1, 4)], [Tensor("y", "float", -1, 1)]);
        var anyWidth = Signature([Tensor("x", "float", -1, -1)], [Tensor("y", "float", -1, 1)]);

        var widened = SignatureCompatibility.Compare(fixedWidth, anyWidth);
        Assert.True(widened.Compatible);
        Assert.False(Assert.Single(widened.Inputs.Changed).Breaking);

        var narrowed = SignatureCompatibility.Compare(anyWidth, fixedWidth);
        Assert.False(narrowed.Compatible);
        Assert.True(Assert.Single(narrowed.Inputs.Changed).Breaking);

        var rank = SignatureCompatibility.Compare(fixedWidth, Signature([Tensor("x", "float", -1, 2, 2)], [Tensor("y", "float", -1, 1)]));
        Assert.False(rank.Compatible);
    }

    [Fact]
    public void Added_and_removed_inputs_and_outputs_are_listed_and_breaking()
    {
        var from = Signature([Tensor("a", "float", -1, 1), Tensor("b", "int64", -1, 1)], [Tensor("score", "float", -1, 1)], features: null);
        var to = Signature([Tensor("a", "float", -1, 1), Tensor("c", "string", -1, 1)], [Tensor("score", "float", -1, 1), Tensor("label", "int64", -1)], features: null);

        var diff = SignatureCompatibility.Compare(from, to);

        Assert.False(diff.Compatible);
        Assert.Equal(["c"], diff.Inputs.Added.Select(t => t.Name));
        Assert.Equal(["b"], diff.Inputs.Removed.Select(t => t.Name));
        Assert.Equal(["label"], diff.Outputs.Added.Select(t => t.Name));
        Assert.Empty(diff.Outputs.Removed);
        Assert.Equal("input 'b' removed; input 'c' added; output 'label' added", diff.Summary);
    }

    [Fact]
    public void Output_changes_are_breaking_even_when_only_a_dimension_became_symbolic()
    {
        var from = Signature([Tensor("x", "float", -1, 4)], [Tensor("probabilities", "float", -1, 2)]);
        var to = Signature([Tensor("x", "float", -1, 4)], [Tensor("probabilities", "float", -1, -1)]);

        var diff = SignatureCompatibility.Compare(from, to);

        Assert.False(diff.Compatible);
        Assert.Equal("output 'probabilities' shape [N, 2] → [N, N]", diff.Summary);
    }

    [Fact]
    public void Feature_names_in_another_order_or_missing_on_one_side_are_breaking()
    {
        var reordered = SignatureCompatibility.Compare(Churn(), Churn(features: ["tenure", "age", "spend", "calls"]));
        Assert.False(reordered.Compatible);
        Assert.Empty(reordered.Inputs.Changed);
        Assert.Equal(["tenure", "age", "spend", "calls"], reordered.FeatureNames!.To);

        var dropped = SignatureCompatibility.Compare(Churn(), Signature([Tensor("features", "float", -1, 4)], [Tensor("score", "float", -1, 1)], features: null));
        Assert.False(dropped.Compatible);
        Assert.Null(dropped.FeatureNames!.To);
    }

    [Fact]
    public void Map_key_types_of_zipmap_outputs_are_compared()
    {
        ModelTensorInfo ZipMap(string key) => new("probabilities", "sequence", "float", []) { KeyType = key, ElementKind = "map" };
        var from = Signature([Tensor("x", "float", -1, 4)], [ZipMap("int64")]);
        var to = Signature([Tensor("x", "float", -1, 4)], [ZipMap("string")]);

        var diff = SignatureCompatibility.Compare(from, to);

        Assert.False(diff.Compatible);
        Assert.Equal(["keyType int64 → string"], Assert.Single(diff.Outputs.Changed).Differences);
    }
}
