namespace BatchScoring.Scoring.OnnxWriter;

/// <summary>
/// A small convolutional classifier over a float [N, C, H, W] input: Conv (K filters of 3×3, stride 1, zero
/// padding 1) + bias, Relu, GlobalAveragePool, Flatten, a Gemm to one value and a Sigmoid, so
/// score = sigmoid(Dense · mean_hw(relu(conv(x))) + DenseBias).
/// </summary>
public sealed class ImageModel
{
    public required byte[] Bytes { get; init; }

    public required string InputName { get; init; }

    public required string OutputName { get; init; }

    public required int Channels { get; init; }

    public required int Height { get; init; }

    public required int Width { get; init; }

    /// <summary>Filters [K, C, 3, 3], row-major.</summary>
    public required float[] Kernels { get; init; }

    /// <summary>One bias per filter.</summary>
    public required float[] KernelBiases { get; init; }

    /// <summary>Weights of the final Gemm, one per filter.</summary>
    public required float[] Dense { get; init; }

    public required float DenseBias { get; init; }

    public int Filters => KernelBiases.Length;

    public int ValuesPerRow => Channels * Height * Width;
}

/// <summary>Image-shaped test models (tensor inputs of rank 4).</summary>
public static class ImageModels
{
    public static ImageModel Conv(int channels, int height, int width, int filters, int seed, string inputName = "image", string outputName = "score")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(filters, 1);
        var random = new Random(seed);
        float[] Uniform(int count, double scale) => Enumerable.Range(0, count).Select(_ => (float)(((random.NextDouble() * 2) - 1) * scale)).ToArray();
        var kernels = Uniform(filters * channels * 9, 1.0 / Math.Sqrt(channels * 9));
        var kernelBiases = Uniform(filters, 0.1);
        var dense = Uniform(filters, 1.0);
        var denseBias = Uniform(1, 0.1)[0];

        var graph = new OnnxGraph("image");
        graph.AddInput(inputName, OnnxType.Tensor(OnnxDataType.Float, "N", channels, height, width));
        var k = graph.AddInitializer(OnnxTensor.Float("K", [filters, channels, 3, 3], kernels));
        var kb = graph.AddInitializer(OnnxTensor.Float("KB", [filters], kernelBiases));
        var d = graph.AddInitializer(OnnxTensor.Float("D", [1, filters], dense));
        var db = graph.AddInitializer(OnnxTensor.Float("DB", [1], [denseBias]));
        graph.AddNode("Conv", [inputName, k, kb], ["conv"])
            .With(OnnxAttribute.IntList("kernel_shape", 3, 3))
            .With(OnnxAttribute.IntList("pads", 1, 1, 1, 1))
            .With(OnnxAttribute.IntList("strides", 1, 1));
        graph.AddNode("Relu", ["conv"], ["relu"]);
        graph.AddNode("GlobalAveragePool", ["relu"], ["pooled"]);
        graph.AddNode("Flatten", ["pooled"], ["flat"]).With(OnnxAttribute.Int("axis", 1));
        graph.AddNode("Gemm", ["flat", d, db], ["logit"]).With(OnnxAttribute.Int("transB", 1));
        graph.AddNode("Sigmoid", ["logit"], [outputName]);
        graph.AddOutput(outputName, OnnxType.Tensor(OnnxDataType.Float, "N", 1));
        return new ImageModel
        {
            Bytes = new OnnxModel(graph) { DocString = $"Conv image model {channels}x{height}x{width}, {filters} filters, seed {seed}" }.ToBytes(),
            InputName = inputName,
            OutputName = outputName,
            Channels = channels,
            Height = height,
            Width = width,
            Kernels = kernels,
            KernelBiases = kernelBiases,
            Dense = dense,
            DenseBias = denseBias,
        };
    }
}
