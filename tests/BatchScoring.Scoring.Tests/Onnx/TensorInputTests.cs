using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using Parquet.Serialization;

namespace BatchScoring.Scoring.Tests.Onnx;

/// <summary>Models whose input is a tensor of rank 4 ([N, C, H, W]) fed from one list column per row.</summary>
public sealed class TensorInputTests
{
    private const int C = 3, H = 6, W = 5;

    private static readonly ImageModel Image = ImageModels.Conv(C, H, W, filters: 4, seed: 7);

    [Fact]
    public void A_list_column_of_C_H_W_values_feeds_an_image_input_and_scores_match_a_hand_computation()
    {
        using var model = ScoringModel.Load(Image.Bytes, TestSupport.CpuOptions);
        const int rows = 9;
        var pixels = Enumerable.Range(0, rows).Select(r => TestSupport.RandomMatrix(1, C * H * W, seed: 100 + r)).ToArray();
        var batch = new ColumnBatch([TestSupport.KeyColumn(rows), new BatchColumn("pixels", ColumnKind.Float32List, pixels)]);

        var mapping = model.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });
        var result = model.Score(batch, mapping, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(InputMappingMode.ListColumn, mapping.Mode);
        Assert.Equal(C * H * W, mapping.FeatureCount);
        Assert.Empty(result.Failures);
        var scores = result.Outputs.Columns[0].As<float>();
        for (var r = 0; r < rows; r++)
        {
            Assert.Equal(HandScore(Image, pixels[r]), scores[r], 5);
        }
    }

    [Fact]
    public void Rows_of_the_wrong_length_fail_one_by_one_and_the_rest_are_scored()
    {
        using var model = ScoringModel.Load(Image.Bytes, TestSupport.CpuOptions);
        var good = TestSupport.RandomMatrix(1, C * H * W, seed: 1);
        var batch = new ColumnBatch([new BatchColumn("image", ColumnKind.Float32List, new[] { good, good[..10], good })]);
        var mapping = model.MapInputs(TestSupport.Schema(batch), new InputMappingRequest());

        var result = model.Score(batch, mapping, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal([0, 2], result.ScoredRows);
        Assert.Equal($"list in column 'image' has 10 values, expected {C * H * W}", Assert.Single(result.Failures).Reason);
    }

    [Fact]
    public void No_list_column_is_refused_naming_the_input_and_its_shape()
    {
        using var model = ScoringModel.Load(Image.Bytes, TestSupport.CpuOptions);

        var none = Assert.Throws<InputMappingException>(() => model.MapInputs([("id", ColumnKind.Int64), ("f0", ColumnKind.Float32)], new InputMappingRequest { KeyColumn = "id" }));
        var notList = Assert.Throws<InputMappingException>(() => model.MapInputs([("image", ColumnKind.Float32), ("v", ColumnKind.Float32List)], new InputMappingRequest()));
        var two = Assert.Throws<InputMappingException>(() => model.MapInputs([("a", ColumnKind.Float32List), ("b", ColumnKind.Float32List)], new InputMappingRequest()));

        foreach (var ex in new[] { none, notList, two })
        {
            Assert.Contains($"Model input 'image' expects float[N, {C}, {H}, {W}] ({C * H * W} values per row", ex.Message, StringComparison.Ordinal);
        }

        Assert.Contains("no list column", none.Message, StringComparison.Ordinal);
        Assert.Contains("column 'image' is Float32, not a list", notList.Message, StringComparison.Ordinal);
        Assert.Contains("2 list columns", two.Message, StringComparison.Ordinal);
        Assert.Equal(["b"], model.MapInputs([("a", ColumnKind.Float32List), ("b", ColumnKind.Float32List)], new InputMappingRequest { Features = ["b"] }).RequiredColumns);
    }

    [Fact]
    public void A_sample_whose_lists_all_have_another_length_is_refused_naming_the_shape_and_the_length_found()
    {
        using var model = ScoringModel.Load(Image.Bytes, TestSupport.CpuOptions);
        var mapping = model.MapInputs([("pixels", ColumnKind.Float32List)], new InputMappingRequest());
        var wrong = new ColumnBatch([new BatchColumn("pixels", ColumnKind.Float32List, new[] { new float[64], new float[64] })]);
        var oneBadRow = new ColumnBatch([new BatchColumn("pixels", ColumnKind.Float32List, new[] { new float[64], new float[C * H * W] })]);

        var ex = Assert.Throws<InputMappingException>(() => TensorInputMapping.EnsureListWidths(model, mapping, wrong));

        Assert.Contains($"Model input 'image' expects float[N, {C}, {H}, {W}] ({C * H * W} values per row", ex.Message, StringComparison.Ordinal);
        Assert.Contains("column 'pixels' holds lists of 64 values", ex.Message, StringComparison.Ordinal);
        TensorInputMapping.EnsureListWidths(model, mapping, oneBadRow);
    }

    [Fact]
    public async Task Nested_Parquet_lists_are_read_flattened_row_major_and_score_like_the_flat_list()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("bs-nested-").FullName, "images.parquet");
        var flat = Enumerable.Range(0, 4).Select(r => TestSupport.RandomMatrix(1, C * H * W, seed: 200 + r)).ToArray();
        var rows = flat.Select((f, r) => new NestedRow
        {
            Id = r,
            Image = Enumerable.Range(0, C).Select(c => Enumerable.Range(0, H).Select(y => f.AsSpan(((c * H) + y) * W, W).ToArray().ToList()).ToList()).ToList(),
        }).ToList();
        await ParquetSerializer.SerializeAsync(rows, path, cancellationToken: TestContext.Current.CancellationToken);

        var plan = await Dataset.PlanAsync(path, 100, TestContext.Current.CancellationToken);
        var image = Assert.Single(plan.Columns, c => c.Name == "Image");
        Assert.Equal(ColumnKind.Float32List, image.Kind);
        var read = await Dataset.ReadChunkAsync(DatasetFormat.Parquet, plan.Chunks[0], plan.Columns, TestContext.Current.CancellationToken);
        var lists = read.Batch["Image"].As<float[]>();

        for (var r = 0; r < flat.Length; r++)
        {
            Assert.Equal(flat[r], lists[r]);
        }

        using var model = ScoringModel.Load(Image.Bytes, TestSupport.CpuOptions);
        var result = model.Score(read.Batch, model.MapInputs(TestSupport.Schema(read.Batch), new InputMappingRequest { KeyColumn = "Id" }), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(HandScore(Image, flat[3]), result.Outputs.Columns[0].As<float>()[3], 5);
    }

    public sealed class NestedRow
    {
        public int Id { get; set; }

        public List<List<List<float>>> Image { get; set; } = [];
    }

    /// <summary>The model's formula, computed directly: 3×3 convolution with zero padding, Relu, mean, dense, sigmoid.</summary>
    private static float HandScore(ImageModel m, float[] x)
    {
        double logit = m.DenseBias;
        for (var k = 0; k < m.Filters; k++)
        {
            double sum = 0;
            for (var y = 0; y < m.Height; y++)
            {
                for (var xx = 0; xx < m.Width; xx++)
                {
                    double acc = m.KernelBiases[k];
                    for (var c = 0; c < m.Channels; c++)
                    {
                        for (var dy = -1; dy <= 1; dy++)
                        {
                            for (var dx = -1; dx <= 1; dx++)
                            {
                                int sy = y + dy, sx = xx + dx;
                                if (sy < 0 || sy >= m.Height || sx < 0 || sx >= m.Width)
                                {
                                    continue;
                                }

                                acc += m.Kernels[(((((k * m.Channels) + c) * 3) + dy + 1) * 3) + dx + 1] * x[(((c * m.Height) + sy) * m.Width) + sx];
                            }
                        }
                    }

                    sum += Math.Max(0, acc);
                }
            }

            logit += m.Dense[k] * (sum / (m.Height * m.Width));
        }

        return (float)(1 / (1 + Math.Exp(-logit)));
    }
}
