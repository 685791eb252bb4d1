using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

public sealed class MlpScoringTests : IDisposable
{
    private const int Features = 64;
    private const int Rows = 300;
    private static readonly MlpModel Model = SampleModels.Mlp([Features, 256, 256, 1], seed: 2024);
    private readonly ScoringModel _scoring = ScoringModel.Load(Model.Bytes, TestSupport.CpuOptions);
    private readonly float[] _x = TestSupport.RandomMatrix(Rows, Features, seed: 9, scale: 2f);

    public void Dispose() => _scoring.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ColumnBatch FeatureBatch(Action<List<BatchColumn>>? edit = null)
    {
        var columns = TestSupport.FeatureColumns(_x, Rows, Features);
        columns.Insert(0, TestSupport.KeyColumn(Rows));
        edit?.Invoke(columns);
        return new ColumnBatch(columns);
    }

    private void AssertMatchesReference(ScoreResult result, float[] x)
    {
        var score = result.Outputs["score"].As<float>();
        Assert.Equal(result.ScoredRows.Length, score.Length);
        for (var i = 0; i < result.ScoredRows.Length; i++)
        {
            var row = result.ScoredRows[i];
            var expected = Reference.Mlp(Model, TestSupport.Row(x, row, Features))[0];
            Assert.Equal(expected, score[i], 1e-5);
        }
    }

    [Fact]
    public void Feature_columns_score_like_the_reference_mlp()
    {
        var batch = FeatureBatch();
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Empty(result.Failures);
        Assert.Equal(Enumerable.Range(0, Rows), result.ScoredRows);
        Assert.Equal([("score", ColumnKind.Float32)], result.Outputs.Columns.Select(c => (c.Name, c.Kind)));
        AssertMatchesReference(result, _x);
    }

    [Fact]
    public void A_batch_run_in_slices_on_cpu_scores_like_one_run()
    {
        // Slices of 7 rows; failing rows on slice edges and inside, so every offset of the slicing is exercised.
        int[] nanRows = [0, 6, 7, 13, 14, 150, 298, 299];
        var x = (float[])_x.Clone();
        foreach (var row in nanRows)
        {
            x[(row * Features) + 5] = float.NaN;
        }

        var batch = new ColumnBatch([TestSupport.KeyColumn(Rows), .. TestSupport.FeatureColumns(x, Rows, Features)]);
        using var sliced = ScoringModel.Load(Model.Bytes, new ScoringSessionOptions { PreferCuda = false, IntraOpThreads = 1, CpuRowsPerRun = 7 });
        using var whole = ScoringModel.Load(Model.Bytes, new ScoringSessionOptions { PreferCuda = false, IntraOpThreads = 1, CpuRowsPerRun = 0 });
        var mapping = sliced.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var inSlices = sliced.Score(batch, mapping, cancellationToken: Ct);
        var inOneRun = whole.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal(nanRows, inSlices.Failures.Select(f => f.Row));
        Assert.Equal(Enumerable.Range(0, Rows).Except(nanRows), inSlices.ScoredRows);
        Assert.Equal(inOneRun.ScoredRows, inSlices.ScoredRows);
        AssertMatchesReference(inSlices, x);
        AssertMatchesReference(inOneRun, x);
    }

    [Fact]
    public void Mixed_numeric_column_types_are_converted_to_float()
    {
        var batch = FeatureBatch(columns =>
        {
            // f1 as double, f2 as int, f3 as long, f4 as bool: values chosen to be exact in float.
            columns[2] = new BatchColumn("f1", ColumnKind.Float64, columns[2].As<float>().Select(v => (double)v).ToArray());
            columns[3] = new BatchColumn("f2", ColumnKind.Int32, Enumerable.Range(0, Rows).Select(i => (i % 5) - 2).ToArray());
            columns[4] = new BatchColumn("f3", ColumnKind.Int64, Enumerable.Range(0, Rows).Select(i => (long)(i % 7)).ToArray());
            columns[5] = new BatchColumn("f4", ColumnKind.Boolean, Enumerable.Range(0, Rows).Select(i => i % 2 == 0).ToArray());
        });
        var x = (float[])_x.Clone();
        for (var i = 0; i < Rows; i++)
        {
            x[(i * Features) + 2] = (i % 5) - 2;
            x[(i * Features) + 3] = i % 7;
            x[(i * Features) + 4] = i % 2 == 0 ? 1 : 0;
        }

        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });
        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Empty(result.Failures);
        AssertMatchesReference(result, x);
    }

    [Fact]
    public void List_column_scores_like_feature_columns()
    {
        var lists = Enumerable.Range(0, Rows).Select(i => TestSupport.Row(_x, i, Features)).ToArray();
        var batch = new ColumnBatch([TestSupport.KeyColumn(Rows), new BatchColumn("features", ColumnKind.Float32List, lists)]);
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal(InputMappingMode.ListColumn, mapping.Mode);
        Assert.Empty(result.Failures);
        AssertMatchesReference(result, _x);
    }

    [Fact]
    public void Wrong_length_and_null_lists_fail_their_rows_only()
    {
        var lists = Enumerable.Range(0, 10).Select(i => (float[]?)TestSupport.Row(_x, i, Features)).ToArray();
        lists[3] = lists[3]![..63];
        lists[5] = null;
        var nulls = new bool[10];
        nulls[7] = true;
        var batch = new ColumnBatch([new BatchColumn("features", ColumnKind.Float32List, lists, nulls)]);
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest());

        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal([0, 1, 2, 4, 6, 8, 9], result.ScoredRows);
        Assert.Equal([3, 5, 7], result.Failures.Select(f => f.Row));
        Assert.Equal("list in column 'features' has 63 values, expected 64", result.Failures[0].Reason);
        Assert.Equal("null value in column 'features'", result.Failures[1].Reason);
        Assert.Equal("features", result.Failures[2].Column);
        AssertMatchesReference(result, _x);
    }

    [Fact]
    public void Feature_name_metadata_selects_columns_in_model_order()
    {
        var names = Enumerable.Range(0, 8).Select(i => $"m{i}").ToArray();
        var model = SampleModels.Mlp([8, 16, 1], seed: 77, featureNames: names);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var x = TestSupport.RandomMatrix(20, 8, seed: 3);
        // Columns in reverse order, plus a distractor numeric column.
        var columns = TestSupport.FeatureColumns(x, 20, 8, "m");
        columns.Reverse();
        columns.Add(new BatchColumn("noise", ColumnKind.Float64, new double[20]));
        var batch = new ColumnBatch(columns);

        var mapping = scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest());
        var result = scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal(names, mapping.RequiredColumns);
        var score = result.Outputs["score"].As<float>();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(Reference.Mlp(model, TestSupport.Row(x, i, 8))[0], score[i], 1e-5);
        }
    }

    [Fact]
    public void Non_finite_values_fail_rows_unless_allowed()
    {
        var batch = FeatureBatch(columns =>
        {
            var f0 = columns[1].As<float>();
            f0[4] = float.NaN;
            f0[9] = float.PositiveInfinity;
            var f1 = columns[2].As<float>();
            f1[9] = float.NaN;
            f1[11] = float.NegativeInfinity;
        });
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var strict = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal([4, 9, 11], strict.Failures.Select(f => f.Row));
        Assert.Equal("non-finite value NaN in column 'f0'", strict.Failures[0].Reason);
        Assert.Equal("non-finite value Infinity in column 'f0'", strict.Failures[1].Reason);
        Assert.Equal("non-finite value -Infinity in column 'f1'", strict.Failures[2].Reason);
        Assert.Equal(Rows - 3, strict.ScoredRows.Length);
        Assert.DoesNotContain(4, strict.ScoredRows);
        Assert.Equal(Rows - 3, strict.Outputs.RowCount);

        var lenient = _scoring.Score(batch, mapping, new ScoreOptions { AllowNonFinite = true }, Ct);

        Assert.Empty(lenient.Failures);
        Assert.Equal(Rows, lenient.ScoredRows.Length);
        Assert.True(float.IsNaN(lenient.Outputs["score"].As<float>()[4]));
        Assert.True(float.IsFinite(lenient.Outputs["score"].As<float>()[3]));
    }

    [Fact]
    public void Null_values_fail_their_rows()
    {
        var nulls = new bool[Rows];
        nulls[0] = nulls[299] = true;
        var batch = FeatureBatch(columns => columns[10] = new BatchColumn(columns[10].Name, ColumnKind.Float32, columns[10].Values, nulls));
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal([0, 299], result.Failures.Select(f => f.Row));
        Assert.All(result.Failures, f => Assert.Equal("null value in column 'f9'", f.Reason));
        Assert.Equal(Enumerable.Range(1, 298), result.ScoredRows);
        AssertMatchesReference(result, _x);
    }

    [Fact]
    public void All_rows_invalid_gives_empty_outputs_with_schema()
    {
        var batch = FeatureBatch(columns => columns[1] = new BatchColumn("f0", ColumnKind.Float32, Enumerable.Repeat(float.NaN, Rows).ToArray()));
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });

        var result = _scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Empty(result.ScoredRows);
        Assert.Equal(Rows, result.Failures.Count);
        Assert.Equal(0, result.Outputs.RowCount);
        Assert.Equal("score", Assert.Single(result.Outputs.Columns).Name);
    }

    [Fact]
    public void Run_raw_matches_score()
    {
        var batch = FeatureBatch();
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });
        var scored = _scoring.Score(batch, mapping, cancellationToken: Ct).Outputs["score"].As<float>();

        var raw = _scoring.RunRaw(_x, Rows);

        Assert.Equal(scored, raw);
    }

    [Fact]
    public void Describe_outputs_comes_from_the_signature()
    {
        Assert.Equal([("score", ColumnKind.Float32)], _scoring.DescribeOutputs());

        using var wide = ScoringModel.Load(SampleModels.Mlp([4, 3], seed: 1, outputName: "Class Scores").Bytes, TestSupport.CpuOptions);
        Assert.Equal(
            [("class_scores_0", ColumnKind.Float32), ("class_scores_1", ColumnKind.Float32), ("class_scores_2", ColumnKind.Float32)],
            wide.DescribeOutputs());
    }

    [Fact]
    public void Multi_column_output_is_split_per_column()
    {
        var model = SampleModels.Mlp([4, 3], seed: 1);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var x = TestSupport.RandomMatrix(5, 4, seed: 8);
        var batch = new ColumnBatch(TestSupport.FeatureColumns(x, 5, 4));
        var result = scoring.Score(batch, scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest()), cancellationToken: Ct);

        Assert.Equal(["score_0", "score_1", "score_2"], result.Outputs.Columns.Select(c => c.Name));
        for (var i = 0; i < 5; i++)
        {
            var expected = Reference.Mlp(model, TestSupport.Row(x, i, 4));
            for (var k = 0; k < 3; k++)
            {
                Assert.Equal(expected[k], result.Outputs[$"score_{k}"].As<float>()[i], 1e-5);
            }
        }
    }

    [Fact]
    public async Task Concurrent_scores_match_serial_results()
    {
        var batch = FeatureBatch(columns => columns[1].As<float>()[17] = float.NaN);
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });
        // Each thread scores its own slice (different sizes), so runs of different shapes interleave.
        var slices = Enumerable.Range(0, 8).Select(t => batch.Slice(t * 7, 100 + (t * 20))).ToArray();
        var serial = slices.Select(slice => _scoring.Score(slice, mapping, cancellationToken: Ct)).ToArray();

        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(
            () => Enumerable.Range(0, 5).Select(_ => _scoring.Score(slices[t], mapping, cancellationToken: Ct)).ToArray(),
            Ct)).ToArray();
        var concurrent = await Task.WhenAll(tasks);

        for (var t = 0; t < 8; t++)
        {
            foreach (var result in concurrent[t])
            {
                Assert.Equal(serial[t].ScoredRows, result.ScoredRows);
                Assert.Equal(serial[t].Failures, result.Failures);
                Assert.Equal(serial[t].Outputs["score"].As<float>(), result.Outputs["score"].As<float>());
            }
        }

        Assert.Single(serial[2].Failures);
    }

    [Fact]
    public void Cancelled_token_stops_scoring()
    {
        var batch = FeatureBatch();
        var mapping = _scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "id" });
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => _scoring.Score(batch, mapping, cancellationToken: cts.Token));
    }
}
