using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests;

/// <summary>Plain C# re-computations of the sample models, independent of ONNX Runtime.</summary>
internal static class Reference
{
    public static double[] Mlp(MlpModel model, ReadOnlySpan<float> input)
    {
        var current = new double[input.Length];
        for (var i = 0; i < input.Length; i++)
        {
            current[i] = input[i];
        }

        for (var layer = 0; layer < model.Weights.Count; layer++)
        {
            int fanIn = model.LayerSizes[layer], fanOut = model.LayerSizes[layer + 1];
            var w = model.Weights[layer];
            var b = model.Biases[layer];
            var next = new double[fanOut];
            var last = layer == model.Weights.Count - 1;
            for (var o = 0; o < fanOut; o++)
            {
                double sum = b[o];
                for (var i = 0; i < fanIn; i++)
                {
                    sum += w[(o * fanIn) + i] * current[i];
                }

                next[o] = last ? Sigmoid(sum) : Math.Max(0, sum);
            }

            current = next;
        }

        return current;
    }

    /// <summary>Per-class probabilities (softmax of summed leaf weights) and the argmax class index.</summary>
    public static (double[] Probabilities, int ClassIndex) Trees(TreeEnsembleModel model, ReadOnlySpan<float> x)
    {
        var scores = new double[model.ClassCount];
        foreach (var tree in model.Trees)
        {
            int leaf;
            if (x[tree.SplitFeatures[0]] <= tree.Thresholds[0])
            {
                leaf = x[tree.SplitFeatures[1]] <= tree.Thresholds[1] ? 0 : 1;
            }
            else
            {
                leaf = x[tree.SplitFeatures[2]] <= tree.Thresholds[2] ? 2 : 3;
            }

            for (var c = 0; c < scores.Length; c++)
            {
                scores[c] += tree.LeafWeights[leaf][c];
            }
        }

        var best = 0;
        for (var c = 1; c < scores.Length; c++)
        {
            if (scores[c] > scores[best])
            {
                best = c;
            }
        }

        var max = scores.Max();
        var exp = scores.Select(s => Math.Exp(s - max)).ToArray();
        var total = exp.Sum();
        return (exp.Select(e => e / total).ToArray(), best);
    }

    public static double PerColumn(PerColumnModel model, double tenure, double monthlyCharges, long services, string contract)
    {
        var features = new List<double> { tenure, monthlyCharges, services };
        features.AddRange(model.Categories.Select(c => c == contract ? 1.0 : 0.0));
        double sum = model.Bias;
        for (var i = 0; i < features.Count; i++)
        {
            sum += model.Weights[i] * features[i];
        }

        return Sigmoid(sum);
    }

    public static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));
}
