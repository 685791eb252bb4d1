namespace BatchScoring.Scoring.OnnxWriter;

/// <summary>A multilayer perceptron: Gemm+Relu hidden layers, a final Gemm and a Sigmoid.</summary>
public sealed class MlpModel
{
    public required byte[] Bytes { get; init; }

    public required IReadOnlyList<int> LayerSizes { get; init; }

    /// <summary>Per layer l: weights W[o, i] row-major, length LayerSizes[l+1] * LayerSizes[l].</summary>
    public required IReadOnlyList<float[]> Weights { get; init; }

    /// <summary>Per layer l: biases of length LayerSizes[l+1].</summary>
    public required IReadOnlyList<float[]> Biases { get; init; }

    public required string InputName { get; init; }

    public required string OutputName { get; init; }

    public IReadOnlyList<string>? FeatureNames { get; init; }

    public int InputSize => LayerSizes[0];

    public int OutputSize => LayerSizes[^1];
}

/// <summary>
/// One depth-2 tree. Node 0 tests x[SplitFeatures[0]] &lt;= Thresholds[0] (true: node 1, false: node 2);
/// node 1 tests feature/threshold [1] (true: leaf 0, false: leaf 1); node 2 tests [2] (true: leaf 2,
/// false: leaf 3). LeafWeights[leaf][class] is added to the class score.
/// </summary>
public sealed record DecisionTree(int[] SplitFeatures, float[] Thresholds, float[][] LeafWeights);

/// <summary>
/// An ai.onnx.ml TreeEnsembleClassifier followed by ZipMap. Scores are the per-class sums of the
/// reached leaves' weights; post_transform is SOFTMAX, so probabilities = softmax(scores) and the
/// label is the class with the highest score.
/// </summary>
public sealed class TreeEnsembleModel
{
    public required byte[] Bytes { get; init; }

    public required string InputName { get; init; }

    public required int FeatureCount { get; init; }

    public required IReadOnlyList<DecisionTree> Trees { get; init; }

    /// <summary>Class labels when the model uses int64 labels, else null.</summary>
    public long[]? ClassLabels { get; init; }

    /// <summary>Class labels when the model uses string labels, else null.</summary>
    public string[]? StringClassLabels { get; init; }

    public int ClassCount => ClassLabels?.Length ?? StringClassLabels!.Length;

    public string PostTransform => "SOFTMAX";
}

/// <summary>
/// A model with one input per column, the way skl2onnx emits them: float [N,1] numeric inputs, an int64
/// [N,1] input (cast to float) and a string [N,1] categorical input one-hot encoded over
/// <see cref="Categories"/>. The features are concatenated in the order of <see cref="FeatureOrder"/>
/// (numeric inputs, then the int64 input, then one slot per category) and fed to
/// score = sigmoid(dot(Weights, x) + Bias).
/// </summary>
public sealed class PerColumnModel
{
    public required byte[] Bytes { get; init; }

    public required IReadOnlyList<string> FloatInputs { get; init; }

    public required string Int64Input { get; init; }

    public required string CategoryInput { get; init; }

    public required IReadOnlyList<string> Categories { get; init; }

    public required float[] Weights { get; init; }

    public required float Bias { get; init; }

    /// <summary>True when an unknown category makes the OneHotEncoder fail (zeros = 0) instead of encoding all zeros.</summary>
    public required bool StrictCategories { get; init; }

    public IReadOnlyList<string> FeatureOrder => [.. FloatInputs, Int64Input, .. Categories.Select(c => $"{CategoryInput}={c}")];
}

/// <summary>Small deterministic ONNX models for tests, demos and benchmarks.</summary>
public static class SampleModels
{
    private const string BatchDim = "N";

    public static MlpModel Mlp(int[] layerSizes, int seed, string inputName = "features", string outputName = "score", IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(layerSizes);
        if (layerSizes.Length < 2 || layerSizes.Any(s => s < 1))
        {
            throw new ArgumentException("An MLP needs at least an input and an output size, all positive.", nameof(layerSizes));
        }

        if (featureNames is not null && featureNames.Count != layerSizes[0])
        {
            throw new ArgumentException($"{featureNames.Count} feature names for {layerSizes[0]} inputs.", nameof(featureNames));
        }

        var random = new Random(seed);
        var graph = new OnnxGraph("mlp");
        graph.AddInput(inputName, OnnxType.Tensor(OnnxDataType.Float, BatchDim, layerSizes[0]));
        var weights = new List<float[]>();
        var biases = new List<float[]>();
        var current = inputName;
        for (var layer = 0; layer < layerSizes.Length - 1; layer++)
        {
            int fanIn = layerSizes[layer], fanOut = layerSizes[layer + 1];
            var scale = 1.0 / Math.Sqrt(fanIn);
            var w = Uniform(random, fanIn * fanOut, scale);
            var b = Uniform(random, fanOut, scale);
            weights.Add(w);
            biases.Add(b);
            var wName = graph.AddInitializer(OnnxTensor.Float($"W{layer}", [fanOut, fanIn], w));
            var bName = graph.AddInitializer(OnnxTensor.Float($"B{layer}", [fanOut], b));
            var gemmOut = $"gemm{layer}";
            graph.AddNode("Gemm", [current, wName, bName], [gemmOut]).With(OnnxAttribute.Int("transB", 1));
            var last = layer == layerSizes.Length - 2;
            var activated = last ? outputName : $"relu{layer}";
            graph.AddNode(last ? "Sigmoid" : "Relu", [gemmOut], [activated]);
            current = activated;
        }

        graph.AddOutput(outputName, OnnxType.Tensor(OnnxDataType.Float, BatchDim, layerSizes[^1]));
        var model = new OnnxModel(graph) { DocString = $"MLP {string.Join('-', layerSizes)} seed {seed}" };
        if (featureNames is not null)
        {
            model.WithMetadata("feature_names", string.Join(',', featureNames));
        }

        return new MlpModel
        {
            Bytes = model.ToBytes(),
            LayerSizes = layerSizes.ToArray(),
            Weights = weights,
            Biases = biases,
            InputName = inputName,
            OutputName = outputName,
            FeatureNames = featureNames?.ToArray(),
        };
    }

    /// <summary>
    /// A 3-class tree ensemble (labels 0, 1, 2 or, with <paramref name="stringLabels"/>, "low", "medium",
    /// "high") over a float [N, featureCount] input named "input". Outputs "label" [N] and
    /// "probabilities" as seq(map(label, float)) via ZipMap.
    /// </summary>
    public static TreeEnsembleModel TreeEnsembleClassifier(int featureCount = 4, int treeCount = 3, int seed = 1, bool stringLabels = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(featureCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(treeCount, 1);
        const int classCount = 3;
        var random = new Random(seed);
        var trees = new List<DecisionTree>();
        for (var t = 0; t < treeCount; t++)
        {
            var features = Enumerable.Range(0, 3).Select(_ => random.Next(featureCount)).ToArray();
            var thresholds = Enumerable.Range(0, 3).Select(_ => (float)Math.Round((random.NextDouble() * 2) - 1, 3)).ToArray();
            var leaves = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, classCount).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
            trees.Add(new DecisionTree(features, thresholds, leaves));
        }

        var nodeTree = new List<long>();
        var nodeIds = new List<long>();
        var nodeFeatures = new List<long>();
        var nodeValues = new List<float>();
        var nodeModes = new List<string>();
        var trueIds = new List<long>();
        var falseIds = new List<long>();
        var classTree = new List<long>();
        var classNode = new List<long>();
        var classIds = new List<long>();
        var classWeights = new List<float>();
        long[] trueChild = [1, 3, 5];
        long[] falseChild = [2, 4, 6];
        for (var t = 0; t < trees.Count; t++)
        {
            var tree = trees[t];
            for (var node = 0; node < 7; node++)
            {
                nodeTree.Add(t);
                nodeIds.Add(node);
                if (node < 3)
                {
                    nodeFeatures.Add(tree.SplitFeatures[node]);
                    nodeValues.Add(tree.Thresholds[node]);
                    nodeModes.Add("BRANCH_LEQ");
                    trueIds.Add(trueChild[node]);
                    falseIds.Add(falseChild[node]);
                }
                else
                {
                    nodeFeatures.Add(0);
                    nodeValues.Add(0);
                    nodeModes.Add("LEAF");
                    trueIds.Add(0);
                    falseIds.Add(0);
                    for (var c = 0; c < classCount; c++)
                    {
                        classTree.Add(t);
                        classNode.Add(node);
                        classIds.Add(c);
                        classWeights.Add(tree.LeafWeights[node - 3][c]);
                    }
                }
            }
        }

        long[] intLabels = [0, 1, 2];
        string[] textLabels = ["low", "medium", "high"];
        var labelType = stringLabels ? OnnxDataType.String : OnnxDataType.Int64;

        var graph = new OnnxGraph("tree_ensemble");
        graph.AddInput("input", OnnxType.Tensor(OnnxDataType.Float, BatchDim, featureCount));
        var ensemble = graph.AddNode("TreeEnsembleClassifier", ["input"], ["label", "raw_scores"], OnnxModel.MlDomain)
            .With(OnnxAttribute.IntList("nodes_treeids", [.. nodeTree]))
            .With(OnnxAttribute.IntList("nodes_nodeids", [.. nodeIds]))
            .With(OnnxAttribute.IntList("nodes_featureids", [.. nodeFeatures]))
            .With(OnnxAttribute.FloatList("nodes_values", [.. nodeValues]))
            .With(OnnxAttribute.StringList("nodes_modes", [.. nodeModes]))
            .With(OnnxAttribute.IntList("nodes_truenodeids", [.. trueIds]))
            .With(OnnxAttribute.IntList("nodes_falsenodeids", [.. falseIds]))
            .With(OnnxAttribute.IntList("class_treeids", [.. classTree]))
            .With(OnnxAttribute.IntList("class_nodeids", [.. classNode]))
            .With(OnnxAttribute.IntList("class_ids", [.. classIds]))
            .With(OnnxAttribute.FloatList("class_weights", [.. classWeights]))
            .With(OnnxAttribute.String("post_transform", "SOFTMAX"));
        var zipMap = graph.AddNode("ZipMap", ["raw_scores"], ["probabilities"], OnnxModel.MlDomain);
        if (stringLabels)
        {
            ensemble.With(OnnxAttribute.StringList("classlabels_strings", textLabels));
            zipMap.With(OnnxAttribute.StringList("classlabels_strings", textLabels));
        }
        else
        {
            ensemble.With(OnnxAttribute.IntList("classlabels_int64s", intLabels));
            zipMap.With(OnnxAttribute.IntList("classlabels_int64s", intLabels));
        }

        graph.AddOutput("label", OnnxType.Tensor(labelType, BatchDim));
        graph.AddOutput("probabilities", OnnxType.Sequence(OnnxType.Map(labelType, OnnxType.Tensor(OnnxDataType.Float, null))));
        var model = new OnnxModel(graph) { DocString = $"Tree ensemble classifier seed {seed}" }.WithOpset(OnnxModel.MlDomain, 3);

        return new TreeEnsembleModel
        {
            Bytes = model.ToBytes(),
            InputName = "input",
            FeatureCount = featureCount,
            Trees = trees,
            ClassLabels = stringLabels ? null : intLabels,
            StringClassLabels = stringLabels ? textLabels : null,
        };
    }

    /// <summary>
    /// A churn-style model with inputs "tenure" and "monthly_charges" (float [N,1]), "num_services"
    /// (int64 [N,1]) and "contract" (string [N,1]; categories month-to-month, one_year, two_year),
    /// output "score" float [N,1].
    /// </summary>
    public static PerColumnModel PerColumnModel(int seed = 7, bool strictCategories = false)
    {
        string[] floatInputs = ["tenure", "monthly_charges"];
        const string int64Input = "num_services";
        const string categoryInput = "contract";
        string[] categories = ["month-to-month", "one_year", "two_year"];
        var featureCount = floatInputs.Length + 1 + categories.Length;
        var random = new Random(seed);
        var weights = Uniform(random, featureCount, 0.1);
        var bias = Uniform(random, 1, 0.5)[0];

        var graph = new OnnxGraph("per_column");
        foreach (var name in floatInputs)
        {
            graph.AddInput(name, OnnxType.Tensor(OnnxDataType.Float, BatchDim, 1));
        }

        graph.AddInput(int64Input, OnnxType.Tensor(OnnxDataType.Int64, BatchDim, 1));
        graph.AddInput(categoryInput, OnnxType.Tensor(OnnxDataType.String, BatchDim, 1));

        graph.AddNode("Cast", [int64Input], ["num_services_float"]).With(OnnxAttribute.Int("to", (long)OnnxDataType.Float));
        graph.AddNode("OneHotEncoder", [categoryInput], ["contract_onehot3d"], OnnxModel.MlDomain)
            .With(OnnxAttribute.StringList("cats_strings", categories))
            .With(OnnxAttribute.Int("zeros", strictCategories ? 0 : 1));
        var shape = graph.AddInitializer(OnnxTensor.Int64("onehot_shape", [2], [-1, categories.Length]));
        graph.AddNode("Reshape", ["contract_onehot3d", shape], ["contract_onehot"]);
        graph.AddNode("Concat", [.. floatInputs, "num_services_float", "contract_onehot"], ["concat"]).With(OnnxAttribute.Int("axis", 1));
        var w = graph.AddInitializer(OnnxTensor.Float("coef", [1, featureCount], weights));
        var b = graph.AddInitializer(OnnxTensor.Float("intercept", [1], [bias]));
        graph.AddNode("Gemm", ["concat", w, b], ["logit"]).With(OnnxAttribute.Int("transB", 1));
        graph.AddNode("Sigmoid", ["logit"], ["score"]);
        graph.AddOutput("score", OnnxType.Tensor(OnnxDataType.Float, BatchDim, 1));
        var model = new OnnxModel(graph) { DocString = "Per-column churn model" }
            .WithOpset(OnnxModel.MlDomain, 3)
            .WithMetadata("model_kind", "per_column");

        return new PerColumnModel
        {
            Bytes = model.ToBytes(),
            FloatInputs = floatInputs,
            Int64Input = int64Input,
            CategoryInput = categoryInput,
            Categories = categories,
            Weights = weights,
            Bias = bias,
            StrictCategories = strictCategories,
        };
    }

    private static float[] Uniform(Random random, int count, double scale)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)(((random.NextDouble() * 2) - 1) * scale);
        }

        return values;
    }
}
