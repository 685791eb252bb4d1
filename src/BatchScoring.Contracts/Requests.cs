using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchScoring.Contracts;

/// <summary>
/// A small inline scoring request from an upstream service (any language): plain JSON (content type
/// <c>application/json</c>, no envelope) on queue <c>score-requests</c>, or this record sent through MassTransit.
/// The worker batches the rows of many requests for the same model version into one inference call and answers
/// with <see cref="ScoreRequestCompleted"/>. JSON schema: schemas/score-request.schema.json.
/// </summary>
public sealed record ScoreRequest
{
    /// <summary>Caller-chosen id (1–200 characters); stored as <c>request_id</c> with the results and failed rows.</summary>
    public required string RequestId { get; init; }

    public required ScoreRequestModel Model { get; init; }

    /// <summary>The rows to score: a key and the features by name (any order).</summary>
    public required IReadOnlyList<ScoreRequestRow> Rows { get; init; }

    /// <summary>
    /// Where the answer is also sent: a queue name (plain JSON through the default exchange), or a MassTransit
    /// address such as <c>queue:name</c> / <c>rabbitmq://host/vhost/name</c> (MassTransit envelope). The AMQP
    /// <c>reply_to</c> property is used when this is absent.
    /// </summary>
    public string? ReplyTo { get; init; }

    /// <summary>Echoed unchanged in the answer (the AMQP <c>correlation_id</c> property is used when this is absent).</summary>
    public string? CorrelationId { get; init; }

    /// <summary>After this time the caller no longer wants the answer: a request still queued then completes with outcome <c>timeout</c>.</summary>
    public DateTimeOffset? Deadline { get; init; }
}

/// <summary>The model to score with: a registered name and an optional version number or alias (default: the highest version).</summary>
public sealed record ScoreRequestModel
{
    public required string Name { get; init; }

    /// <summary>Version number ("3" or 3 in JSON) or alias ("production"); null or "latest" = highest version.</summary>
    [JsonConverter(typeof(StringOrIntegerJsonConverter))]
    public string? Version { get; init; }
}

/// <summary>One row: its key (a string, or an integer read as its decimal text) and its features by name.</summary>
public sealed record ScoreRequestRow
{
    [JsonConverter(typeof(StringOrIntegerJsonConverter))]
    public required string Key { get; init; }

    /// <summary>
    /// Feature name → value: a number (or "NaN", "Infinity", "-Infinity"), a string, a boolean, null, or for a model
    /// with a single [N, F] input and no feature_names metadata, an array of F numbers under the input's name.
    /// From .NET, put numbers, strings, booleans, float[] or <see cref="JsonElement"/>s in the dictionary.
    /// </summary>
    public required IReadOnlyDictionary<string, object?> Features { get; init; }
}

/// <summary>
/// The answer to one <see cref="ScoreRequest"/>: published as an event (exchange <c>BatchScoring.Contracts:ScoreRequestCompleted</c>)
/// and sent to the request's reply address when it has one. JSON schema: schemas/score-request-completed.schema.json.
/// </summary>
public sealed record ScoreRequestCompleted
{
    public required string RequestId { get; init; }

    public string? CorrelationId { get; init; }

    /// <summary>The model version that scored the rows (aliases resolved); the version is null when the model could not be resolved.</summary>
    public required ScoredModel Model { get; init; }

    /// <summary>One of <see cref="ScoreRequestOutcome"/>: scored, partially_scored, timeout, overloaded, rejected.</summary>
    public required string Outcome { get; init; }

    /// <summary>Scored rows, in request order: key and flattened model outputs (score, label, probability_&lt;class&gt;, ...).</summary>
    public IReadOnlyList<RowScore> Scores { get; init; } = [];

    /// <summary>Rows that were not scored, with the reason (null / non-finite feature, model error).</summary>
    public IReadOnlyList<RowFailureReport> Failures { get; init; } = [];

    /// <summary>Why the request as a whole was not scored (rejected, overloaded, timeout).</summary>
    public string? Error { get; init; }

    public DateTimeOffset CompletedAt { get; init; }
}

public sealed record ScoredModel(string Name, int? Version)
{
    /// <summary>
    /// While the alias requested runs a canary: the canary version and its share of rows in percent. Each row's
    /// <see cref="RowScore.Version"/> then says which of the two versions scored it. Left out (not null) without a canary.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? CanaryVersion { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? CanaryPercent { get; init; }
}

/// <summary>A scored row: output column → value (number, string, boolean, null or an array of numbers).</summary>
public sealed record RowScore(string Key, IReadOnlyDictionary<string, object?> Outputs)
{
    /// <summary>The model version that scored this row (differs between rows of one request while a canary runs); left out without a canary.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Version { get; init; }
}

/// <summary>A row that was not scored; <see cref="Column"/> names the offending feature when known.</summary>
public sealed record RowFailureReport(string? Key, string? Column, string Reason)
{
    /// <summary>The model version the row was sent to, when it got that far (left out otherwise).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Version { get; init; }
}

/// <summary>Values of <see cref="ScoreRequestCompleted.Outcome"/>.</summary>
public static class ScoreRequestOutcome
{
    /// <summary>Every row was scored and written.</summary>
    public const string Scored = "scored";

    /// <summary>Some rows failed (see failures); the others were scored and written.</summary>
    public const string PartiallyScored = "partially_scored";

    /// <summary>The deadline had passed when the worker took the request from its queue; nothing was scored.</summary>
    public const string Timeout = "timeout";

    /// <summary>The model's backlog was over its limit; nothing was scored. Retry later.</summary>
    public const string Overloaded = "overloaded";

    /// <summary>The request was invalid (see error); it is also moved to the <c>score-requests_error</c> queue.</summary>
    public const string Rejected = "rejected";
}

/// <summary>Reads a JSON string or integer as a string (integers as their decimal text); writes a string.</summary>
public sealed class StringOrIntegerJsonConverter : JsonConverter<string>
{
    public override bool HandleNull => false;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString(),
        JsonTokenType.Number when reader.TryGetInt64(out var value) => value.ToString(CultureInfo.InvariantCulture),
        JsonTokenType.Null => null,
        _ => throw new JsonException($"Expected a string or an integer, found {reader.TokenType}."),
    };

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value);
    }
}
