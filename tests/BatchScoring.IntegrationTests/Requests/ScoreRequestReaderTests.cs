using System.Text;
using BatchScoring.Application.Requests;

namespace BatchScoring.IntegrationTests.Requests;

/// <summary>The one-pass reader of score-requests bodies (no servers involved).</summary>
public sealed class ScoreRequestReaderTests
{
    private static ReadScoreRequest Read(string json) => ScoreRequestReader.Read(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Plain_json_with_any_property_case_and_order_is_read_with_typed_feature_values()
    {
        var read = Read("""
            {"Rows":[{"features":{"b":2.5,"a":7,"s":"x","t":true,"n":null,"v":[1,2.5]},"key":42}],
             "MODEL":{"version":3,"name":"churn"},"requestId":"r-1","replyTo":"replies","correlationId":"c-9",
             "deadline":"2026-11-23T10:00:00+01:00","extra":{"ignored":[1,2]}}
            """);

        Assert.Null(read.Error);
        var request = read.Request!;
        Assert.Equal("r-1", request.RequestId);
        Assert.Equal(("churn", "3"), (request.Model.Name, request.Model.Version));
        Assert.Equal("replies", request.ReplyTo);
        Assert.Equal("c-9", request.CorrelationId);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero), request.Deadline);
        var row = Assert.Single(request.Rows);
        Assert.Equal("42", row.Key);
        Assert.Equal(2.5, row.Features["b"]);
        Assert.Equal(7L, row.Features["a"]);
        Assert.Equal("x", row.Features["s"]);
        Assert.Equal(true, row.Features["t"]);
        Assert.Null(row.Features["n"]);
        Assert.Equal(new[] { 1.0, 2.5 }, row.Features["v"]);
        Assert.Null(read.ResponseAddress);
    }

    [Fact]
    public void A_masstransit_envelope_is_unwrapped_and_its_response_address_kept()
    {
        var read = Read("""
            {"messageId":"m","requestId":"8f0c","conversationId":"conv","responseAddress":"rabbitmq://localhost/bus-xyz?temporary=true",
             "messageType":["urn:message:BatchScoring.Contracts:ScoreRequest"],
             "message":{"requestId":"inner","model":{"name":"m"},"rows":[{"key":"k","features":{"f":1}}]}}
            """);

        Assert.Null(read.Error);
        Assert.Equal("inner", read.Request!.RequestId);
        Assert.Equal("8f0c", read.EnvelopeRequestId);
        Assert.Equal("conv", read.ConversationId);
        Assert.Equal(new Uri("rabbitmq://localhost/bus-xyz?temporary=true"), read.ResponseAddress);
    }

    [Theory]
    [InlineData("""{"requestId":"r","model":{"name":"m"},"rows":"nope","replyTo":"q"}""", "rows must be an array of {key, features} objects, found a string")]
    [InlineData("""{"requestId":"r","model":{"name":"m"},"rows":[{"key":"a","features":{}},{"key":true,"features":{}}],"replyTo":"q"}""", "rows[1].key must be a string or an integer, found a boolean")]
    [InlineData("""{"requestId":"r","model":{"name":"m"},"rows":[{"key":"a"}],"replyTo":"q"}""", "rows[0].features is required")]
    [InlineData("""{"requestId":"r","model":"m","rows":[],"replyTo":"q"}""", "model must be an object with name and optional version, found a string")]
    [InlineData("""{"requestId":"r","model":{"name":"m"},"rows":[],"deadline":"soon","replyTo":"q"}""", "deadline must be an ISO 8601 date and time with offset, got \"soon\"")]
    [InlineData("""{"requestId":"r","rows":[],"replyTo":"q"}""", "model.name is required")]
    public void Schema_violations_name_the_field_and_keep_what_is_needed_to_answer(string json, string expected)
    {
        var read = Read(json);

        Assert.Null(read.Request);
        Assert.Contains("does not match the ScoreRequest schema", read.Error, StringComparison.Ordinal);
        Assert.Contains(expected, read.Error, StringComparison.Ordinal);
        Assert.Equal("r", read.RequestId);
        Assert.Equal("q", read.ReplyTo); // read even where it follows the offending field
    }

    [Theory]
    [InlineData("""{"requestId":"r","model":{"name":"m""")]
    [InlineData("""{"requestId":"r"} trailing""")]
    [InlineData("")]
    public void A_body_that_is_not_json_is_reported_as_such(string json)
    {
        var read = Read(json);

        Assert.Null(read.Request);
        Assert.Matches("not valid JSON|must be a JSON object", read.Error!);
    }
}
