using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BatchScoring.Contracts;
using BatchScoring.Worker.Requests.Answers;

namespace BatchScoring.IntegrationTests.Requests.Answers;

/// <summary>The hand-written answer JSON must be what System.Text.Json writes for the contract (camelCase, null members as null, canary-only members left out).</summary>
public sealed class ScoreRequestCompletedJsonTests
{
    private static readonly JsonSerializerOptions Contract = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static TheoryData<string> Cases => ["scored", "rejected", "canary"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hand_written_json_equals_the_serializers(string kind)
    {
        var completed = kind == "canary"
            ? new ScoreRequestCompleted
            {
                RequestId = "r-2",
                Model = new ScoredModel("churn", 5) { CanaryVersion = 4, CanaryPercent = 10 },
                Outcome = ScoreRequestOutcome.PartiallyScored,
                Scores = [new RowScore("k1", new Dictionary<string, object?> { ["score"] = 0.5f }) { Version = 4 }],
                Failures = [new RowFailureReport("k2", null, "overloaded") { Version = 5 }],
                CompletedAt = DateTimeOffset.UnixEpoch,
            }
            : kind == "scored"
            ? new ScoreRequestCompleted
            {
                RequestId = "r-1",
                CorrelationId = "c\"1",
                Model = new ScoredModel("churn", 3),
                Outcome = ScoreRequestOutcome.PartiallyScored,
                Scores =
                [
                    new RowScore("k1", new Dictionary<string, object?>
                    {
                        ["score"] = 0.1234567f, ["label"] = 2L, ["name"] = "yes", ["flag"] = true, ["missing"] = null,
                        ["probs"] = new[] { 0.25f, 0.75f }, ["wide"] = 1e300, ["count"] = 7,
                    }),
                ],
                Failures = [new RowFailureReport("k2", "f_003", "value is NaN"), new RowFailureReport(null, null, "model error")],
                CompletedAt = new DateTimeOffset(2026, 11, 23, 21, 58, 1, 123, TimeSpan.Zero),
            }
            : new ScoreRequestCompleted
            {
                RequestId = "",
                Model = new ScoredModel("", null),
                Outcome = ScoreRequestOutcome.Rejected,
                Error = "Invalid request: the body is not valid JSON",
                CompletedAt = DateTimeOffset.UnixEpoch,
            };

        var handWritten = JsonNode.Parse(ScoreRequestCompletedJson.Serialize(completed));
        var serializer = JsonNode.Parse(JsonSerializer.SerializeToUtf8Bytes(completed, Contract));

        Assert.True(JsonNode.DeepEquals(serializer, handWritten), $"expected {serializer?.ToJsonString()}\nactual   {handWritten?.ToJsonString()}");
    }
}
