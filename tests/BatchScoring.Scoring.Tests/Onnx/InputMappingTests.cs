using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

public class InputMappingTests
{
    private static readonly (string, ColumnKind)[] PerColumnSchema =
    [
        ("customer_id", ColumnKind.Int64),
        ("tenure", ColumnKind.Float64),
        ("monthly_charges", ColumnKind.Float32),
        ("num_services", ColumnKind.Int32),
        ("contract", ColumnKind.String),
    ];

    [Fact]
    public void Per_column_model_maps_each_input_by_name()
    {
        using var model = ScoringModel.Load(SampleModels.PerColumnModel().Bytes, TestSupport.CpuOptions);
        var mapping = model.MapInputs(PerColumnSchema, new InputMappingRequest { KeyColumn = "customer_id" });

        Assert.Equal(InputMappingMode.PerInput, mapping.Mode);
        Assert.Equal(["tenure", "monthly_charges", "num_services", "contract"], mapping.RequiredColumns);
    }

    [Fact]
    public void Missing_column_names_the_input_but_not_the_data_columns()
    {
        using var model = ScoringModel.Load(SampleModels.PerColumnModel().Bytes, TestSupport.CpuOptions);
        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs(PerColumnSchema.Where(c => c.Item1 != "contract").ToArray(), new InputMappingRequest()));

        Assert.Contains("'contract'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("string", ex.Message, StringComparison.Ordinal);
        Assert.Contains("4 columns", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("monthly_charges", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void String_input_fed_from_numeric_column_is_rejected()
    {
        using var model = ScoringModel.Load(SampleModels.PerColumnModel().Bytes, TestSupport.CpuOptions);
        var schema = PerColumnSchema.Select(c => c.Item1 == "contract" ? ("contract", ColumnKind.Float64) : c).ToArray();
        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest()));

        Assert.Contains("'contract'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Float64", ex.Message, StringComparison.Ordinal);
        Assert.Contains("String column", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Int64_input_fed_from_float_column_is_rejected()
    {
        using var model = ScoringModel.Load(SampleModels.PerColumnModel().Bytes, TestSupport.CpuOptions);
        var schema = PerColumnSchema.Select(c => c.Item1 == "num_services" ? ("num_services", ColumnKind.Float32) : c).ToArray();
        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest()));
        Assert.Contains("'num_services'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Numeric_columns_except_key_and_passthrough_become_features_in_file_order()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([3, 1], seed: 1).Bytes, TestSupport.CpuOptions);
        (string, ColumnKind)[] schema =
        [
            ("id", ColumnKind.Int64),
            ("b", ColumnKind.Float64),
            ("region_code", ColumnKind.Int32),
            ("name", ColumnKind.String),
            ("a", ColumnKind.Int32),
            ("c", ColumnKind.Boolean),
        ];

        var mapping = model.MapInputs(schema, new InputMappingRequest { KeyColumn = "id", Passthrough = ["region_code", "name"] });

        Assert.Equal(InputMappingMode.FeatureColumns, mapping.Mode);
        Assert.Equal(["b", "a", "c"], mapping.RequiredColumns);
        Assert.Equal(3, mapping.FeatureCount);
    }

    [Fact]
    public void Wrong_feature_count_says_expected_and_selected()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([64, 1], seed: 1).Bytes, TestSupport.CpuOptions);
        var schema = Enumerable.Range(0, 63).Select(i => ($"f{i}", ColumnKind.Float32)).Prepend(("id", ColumnKind.Int64)).ToArray();

        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest { KeyColumn = "id" }));

        Assert.StartsWith("Model expects 64 features but 63 numeric columns were selected", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("f0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Explicit_features_are_checked_for_presence_type_and_count()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([2, 1], seed: 1).Bytes, TestSupport.CpuOptions);
        (string, ColumnKind)[] schema = [("x", ColumnKind.Float32), ("y", ColumnKind.Float64), ("label", ColumnKind.String), ("z", ColumnKind.Int64)];

        var missing = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest { Features = ["x", "nope"] }));
        Assert.Contains("'nope'", missing.Message, StringComparison.Ordinal);

        var wrongType = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest { Features = ["x", "label"] }));
        Assert.Contains("'label' is String", wrongType.Message, StringComparison.Ordinal);

        var count = Assert.Throws<InputMappingException>(() => model.MapInputs(schema, new InputMappingRequest { Features = ["x", "y", "z"] }));
        Assert.Contains("Model expects 2 features but 3 columns were given: x, y, z", count.Message, StringComparison.Ordinal);

        var ok = model.MapInputs(schema, new InputMappingRequest { Features = ["z", "x"] });
        Assert.Equal(["z", "x"], ok.RequiredColumns);
    }

    [Fact]
    public void Metadata_feature_names_choose_and_order_the_columns()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([3, 1], seed: 1, featureNames: ["c", "a", "b"]).Bytes, TestSupport.CpuOptions);
        (string, ColumnKind)[] schema = [("a", ColumnKind.Float32), ("extra", ColumnKind.Float32), ("b", ColumnKind.Float32), ("c", ColumnKind.Float32)];

        var mapping = model.MapInputs(schema, new InputMappingRequest());
        Assert.Equal(["c", "a", "b"], mapping.RequiredColumns);

        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs(schema.Where(c => c.Item1 != "b").ToArray(), new InputMappingRequest()));
        Assert.Contains("'b'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void List_column_is_used_when_named_like_the_input_or_the_only_candidate()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([8, 1], seed: 1).Bytes, TestSupport.CpuOptions);

        var named = model.MapInputs([("id", ColumnKind.Int64), ("features", ColumnKind.Float32List), ("weight", ColumnKind.Float64)], new InputMappingRequest { KeyColumn = "id" });
        Assert.Equal(InputMappingMode.ListColumn, named.Mode);
        Assert.Equal(["features"], named.RequiredColumns);

        var only = model.MapInputs([("id", ColumnKind.Int64), ("embedding", ColumnKind.Float32List)], new InputMappingRequest { KeyColumn = "id" });
        Assert.Equal(InputMappingMode.ListColumn, only.Mode);
        Assert.Equal(["embedding"], only.RequiredColumns);

        var explicitList = model.MapInputs([("v1", ColumnKind.Float32List), ("v2", ColumnKind.Float32List)], new InputMappingRequest { Features = ["v2"] });
        Assert.Equal(["v2"], explicitList.RequiredColumns);
    }

    [Fact]
    public void No_usable_columns_is_reported()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([8, 1], seed: 1).Bytes, TestSupport.CpuOptions);
        var ex = Assert.Throws<InputMappingException>(() => model.MapInputs([("id", ColumnKind.Int64), ("name", ColumnKind.String)], new InputMappingRequest { KeyColumn = "id" }));
        Assert.Contains("no numeric or list columns", ex.Message, StringComparison.Ordinal);
        Assert.Contains("2 columns in all", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Score_rejects_batch_missing_a_mapped_column()
    {
        using var model = ScoringModel.Load(SampleModels.Mlp([2, 1], seed: 1).Bytes, TestSupport.CpuOptions);
        var mapping = model.MapInputs([("x", ColumnKind.Float32), ("y", ColumnKind.Float32)], new InputMappingRequest());
        var batch = new ColumnBatch([new BatchColumn("x", ColumnKind.Float32, new float[] { 1 })]);

        var ex = Assert.Throws<InputMappingException>(() => model.Score(batch, mapping, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("'y'", ex.Message, StringComparison.Ordinal);

        var retyped = new ColumnBatch([new BatchColumn("x", ColumnKind.Float32, new float[] { 1 }), new BatchColumn("y", ColumnKind.Float64, new double[] { 1 })]);
        var kind = Assert.Throws<InputMappingException>(() => model.Score(retyped, mapping, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("'y' is Float64", kind.Message, StringComparison.Ordinal);
    }
}
