using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Onnx;

public class PerColumnScoringTests
{
    private const int Rows = 120;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (ColumnBatch Batch, double[] Tenure, float[] Monthly, int[] Services, string?[] Contract) Churn(int rows, Func<int, string?> contract, bool[]? contractNulls = null)
    {
        var random = new Random(12);
        var tenure = Enumerable.Range(0, rows).Select(_ => Math.Round(random.NextDouble() * 72, 1)).ToArray();
        var monthly = Enumerable.Range(0, rows).Select(_ => (float)Math.Round(20 + (random.NextDouble() * 100), 2)).ToArray();
        var services = Enumerable.Range(0, rows).Select(i => i % 6).ToArray();
        var contracts = Enumerable.Range(0, rows).Select(contract).ToArray();
        var batch = new ColumnBatch(
        [
            TestSupport.KeyColumn(rows, "customer_id"),
            new BatchColumn("tenure", ColumnKind.Float64, tenure),
            new BatchColumn("monthly_charges", ColumnKind.Float32, monthly),
            new BatchColumn("num_services", ColumnKind.Int32, services),
            new BatchColumn("contract", ColumnKind.String, contracts, contractNulls),
        ]);
        return (batch, tenure, monthly, services, contracts);
    }

    [Fact]
    public void Per_column_inputs_including_string_category_match_reference()
    {
        var model = SampleModels.PerColumnModel(seed: 7);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        string[] categories = ["month-to-month", "one_year", "two_year", "unknown_plan"];
        var (batch, tenure, monthly, services, contract) = Churn(Rows, i => categories[i % 4]);

        var mapping = scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "customer_id" });
        var result = scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Empty(result.Failures);
        var score = result.Outputs["score"].As<float>();
        for (var i = 0; i < Rows; i++)
        {
            // An unseen category encodes as all zeros (zeros = 1).
            var expected = Reference.PerColumn(model, (float)tenure[i], monthly[i], services[i], contract[i]!);
            Assert.Equal(expected, score[i], 1e-5);
        }
    }

    [Fact]
    public void Null_strings_fail_their_rows()
    {
        var model = SampleModels.PerColumnModel(seed: 7);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        var masked = new bool[10];
        masked[6] = true;
        var (batch, _, _, _, _) = Churn(10, i => i == 2 ? null : "one_year", masked);

        var result = scoring.Score(batch, scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest()), cancellationToken: Ct);

        Assert.Equal([2, 6], result.Failures.Select(f => f.Row));
        Assert.All(result.Failures, f => Assert.Equal("null value in column 'contract'", f.Reason));
        Assert.Equal([0, 1, 3, 4, 5, 7, 8, 9], result.ScoredRows);
    }

    [Fact]
    public void Rows_that_make_the_model_throw_are_isolated_and_the_rest_scored()
    {
        var model = SampleModels.PerColumnModel(seed: 7, strictCategories: true);
        using var scoring = ScoringModel.Load(model.Bytes, TestSupport.CpuOptions);
        int[] poisoned = [5, 6, 57, 118];
        var (batch, tenure, monthly, services, contract) = Churn(Rows, i => poisoned.Contains(i) ? "lifetime" : model.Categories[i % 3]);
        var mapping = scoring.MapInputs(TestSupport.Schema(batch), new InputMappingRequest { KeyColumn = "customer_id" });

        var result = scoring.Score(batch, mapping, cancellationToken: Ct);

        Assert.Equal(poisoned, result.Failures.Select(f => f.Row));
        Assert.All(result.Failures, f =>
        {
            Assert.Null(f.Column);
            Assert.StartsWith("model error: ", f.Reason, StringComparison.Ordinal);
        });
        Assert.Equal(Enumerable.Range(0, Rows).Except(poisoned), result.ScoredRows);
        var score = result.Outputs["score"].As<float>();
        for (var k = 0; k < result.ScoredRows.Length; k++)
        {
            var i = result.ScoredRows[k];
            Assert.Equal(Reference.PerColumn(model, (float)tenure[i], monthly[i], services[i], contract[i]!), score[k], 1e-5);
        }
    }

    [Fact]
    public void Describe_outputs_when_probe_inputs_make_the_model_throw_still_uses_signature()
    {
        // The empty-string probe would fail the strict encoder, but the output shape is fixed in the signature.
        using var scoring = ScoringModel.Load(SampleModels.PerColumnModel(strictCategories: true).Bytes, TestSupport.CpuOptions);
        Assert.Equal([("score", ColumnKind.Float32)], scoring.DescribeOutputs());
    }
}
