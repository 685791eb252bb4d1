using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Scoring.Tests.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

// Other tests open ONNX Runtime sessions directly; the environment must exist with the log callback first.
[assembly: AssemblyFixture(typeof(OnnxRuntimeEnvironmentFixture))]

namespace BatchScoring.Scoring.Tests.Onnx;

public sealed class OnnxRuntimeEnvironmentFixture
{
    public OnnxRuntimeEnvironmentFixture() => OnnxRuntimeLog.EnsureEnvironment(NullLogger.Instance);
}

public sealed class OnnxRuntimeLogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Declares output y as float[N] while it comes out [N, 1], like some LightGBM exports: ONNX Runtime
    /// accepts the model and warns on every Run ("Expected shape from model of {-1} does not match ...").
    /// </summary>
    private static byte[] DeclaredShapeDiffersModel()
    {
        var graph = new OnnxGraph("declared_shape_differs");
        graph.AddInput("x", OnnxType.Tensor(OnnxDataType.Float, "N", 1));
        // An ai.onnx.ml op: its shape inference does not contradict the declared output shape at load.
        graph.AddNode("Scaler", ["x"], ["y"], OnnxModel.MlDomain)
            .With(OnnxAttribute.FloatList("scale", 2f))
            .With(OnnxAttribute.FloatList("offset", 0f));
        graph.AddOutput("y", OnnxType.Tensor(OnnxDataType.Float, "N"));
        return new OnnxModel(graph).WithOpset(OnnxModel.MlDomain, 1).ToBytes();
    }

    [Fact]
    public void Onnx_runtime_warnings_reach_the_model_logger_once_then_at_debug()
    {
        var logger = new ListLogger();
        using var model = ScoringModel.Load(DeclaredShapeDiffersModel(), TestSupport.CpuOptions, logger, source: "lightgbm-like.onnx");
        var batch = new ColumnBatch([new BatchColumn("x", ColumnKind.Float32, new float[] { 1, 2, 3 })]);
        var mapping = model.MapInputs(TestSupport.Schema(batch), new InputMappingRequest());

        for (var run = 0; run < 3; run++)
        {
            var result = model.Score(batch, mapping, cancellationToken: Ct);
            Assert.Equal([2f, 4f, 6f], result.Outputs["y"].As<float>());
        }

        var fromOrt = logger.Entries.Where(e => e.Message.Contains("VerifyOutputSizes", StringComparison.Ordinal)).ToArray();
        Assert.Equal([LogLevel.Warning, LogLevel.Debug, LogLevel.Debug], fromOrt.Select(e => e.Level));
        Assert.All(fromOrt, e =>
        {
            Assert.Contains("lightgbm-like.onnx", e.Message, StringComparison.Ordinal);
            Assert.Contains("does not match actual shape of {3,1} for output y", e.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Each_model_gets_its_own_onnx_runtime_lines()
    {
        var warned = new ListLogger();
        var quiet = new ListLogger();
        using var mismatched = ScoringModel.Load(DeclaredShapeDiffersModel(), TestSupport.CpuOptions, warned);
        using var clean = ScoringModel.Load(SampleModels.Mlp([1, 1], seed: 1, inputName: "x").Bytes, TestSupport.CpuOptions, quiet);
        var batch = new ColumnBatch([new BatchColumn("x", ColumnKind.Float32, new float[] { 1, 2 })]);

        mismatched.Score(batch, mismatched.MapInputs(TestSupport.Schema(batch), new InputMappingRequest()), cancellationToken: Ct);
        clean.Score(batch, clean.MapInputs(TestSupport.Schema(batch), new InputMappingRequest()), cancellationToken: Ct);

        Assert.Contains(warned.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("VerifyOutputSizes", StringComparison.Ordinal));
        Assert.DoesNotContain(quiet.Entries, e => e.Message.Contains("ONNX Runtime", StringComparison.Ordinal));
    }
}
