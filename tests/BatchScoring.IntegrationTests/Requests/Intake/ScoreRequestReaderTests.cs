using System.Text;
using BatchScoring.Worker.Requests.Intake;

namespace BatchScoring.IntegrationTests.Requests.Intake;

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
    public void Rows_with_the_same_names_share_them_and_features_in_another_order_are_still_found_by_name()
    {
        var request = Read("""
            {"requestId":"r","model":{"name":"m"},"rows":[
              {"key":"a","features":{"x":1.5,"y":2,"z":-3.25}},
              {"key":"b","features":{"x":4.5,"y":5,"z":6.5}},
              {"key":"c","features":{"z":9.5,"x":7.5,"y":8}}]}
            """).Request!;

        var rows = request.Rows.Select(r => Assert.IsType<FeatureValues>(r.Features)).ToArray();
        Assert.Same(rows[0].Names, rows[1].Names);
        Assert.Equal(["x", "y", "z"], rows[0].Keys);
        Assert.Equal(new object?[] { 1.5, 2L, -3.25 }, rows[0].Values);
        Assert.Equal(7.5, rows[2]["x"]);
        Assert.Equal(8L, rows[2]["y"]);
        Assert.Equal(2, rows[2].IndexOf("y", hint: 1));
        Assert.True(rows[2].TryGetNumber(rows[2].IndexOf("z", hint: 2), out var z));
        Assert.Equal(9.5, z);
        Assert.Equal(-1, rows[2].IndexOf("w", hint: 0));
        Assert.False(rows[2].ContainsKey("w"));
    }

    [Fact]
    public void A_repeated_feature_name_keeps_the_last_value_and_large_integers_stay_exact()
    {
        var row = Assert.Single(Read("""
            {"requestId":"r","model":{"name":"m"},"rows":[{"key":"a","features":{"a":1,"big":9007199254740993,"a":2.5}}]}
            """).Request!.Rows);

        Assert.Equal(2, row.Features.Count);
        Assert.Equal(2.5, row.Features["a"]);
        Assert.Equal(9007199254740993L, row.Features["big"]);
    }

    [Fact]
    public void Wide_rows_are_looked_up_by_name()
    {
        var features = string.Join(",", Enumerable.Range(0, 300).Select(i => $"\"f{i}\":{i}.5"));
        var json = "{\"requestId\":\"r\",\"model\":{\"name\":\"m\"},\"rows\":[{\"key\":\"a\",\"features\":{" + features + "}}]}";
        var row = Assert.IsType<FeatureValues>(Assert.Single(Read(json).Request!.Rows).Features);

        Assert.Equal(300, row.Count);
        Assert.Equal(299.5, row["f299"]);
        Assert.Equal(17, row.IndexOf("f17", hint: 3));
        Assert.Equal(Enumerable.Range(0, 300).Select(i => i + 0.5), row.Values.Cast<double>());
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
