using System.Globalization;
using System.Text.Json;
using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// Reads a <see cref="ScoreRequest"/> from a message body in one forward pass (plain JSON, or the same object under
/// <c>message</c> in a MassTransit envelope). Top-level and model property names match case-insensitively; unknown
/// properties are ignored. Feature values become <see cref="double"/>/<see cref="long"/>/<see cref="string"/>/
/// <see cref="bool"/>/null, arrays of numbers <see cref="double"/>[]; anything else stays a <see cref="JsonElement"/>
/// so that the model's feature check can say what it got. Errors name the field (<c>rows[3].key</c>) and what is wrong.
/// </summary>
public static partial class ScoreRequestReader
{
    private const int MaxErrorTextLength = 300;

    public static ReadScoreRequest Read(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = 16 });
        var root = new Fields();
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return new ReadScoreRequest { Error = $"Invalid request: the body must be a JSON object, found {Describe(reader.TokenType)}." };
            }

            ReadObject(ref reader, root, isRoot: true);
            if (reader.Read())
            {
                throw new JsonException($"unexpected content after the top-level object ({Describe(reader.TokenType)})");
            }
        }
        catch (JsonException ex)
        {
            return Failed(root, $"Invalid request: the body is not valid JSON: {Trim(ex.Message)}");
        }
        catch (InvalidOperationException ex)
        {
            // Utf8JsonReader checks a string's text (UTF-8, surrogate pairs) only when it is decoded, and says so this way.
            return Failed(root, $"Invalid request: the body is not valid JSON: a string cannot be decoded ({Trim(ex.Message)})");
        }
        catch (SchemaException ex)
        {
            // Fields after the offending one (replyTo often follows rows) are still wanted for the answer.
            return Failed(ReadWhatWeCan(body) ?? root, $"Invalid request: the body does not match the ScoreRequest schema: {ex.Message}");
        }

        var request = IsEnvelope(root) ? root.Envelope! : root;
        var problems = new List<string>();
        if (request.RequestId is null)
        {
            problems.Add("requestId is required.");
        }

        if (request.ModelName is null)
        {
            problems.Add("model.name is required.");
        }

        if (request.Rows is null)
        {
            problems.Add("rows is required.");
        }

        if (problems.Count > 0)
        {
            return Failed(root, "Invalid request: the body does not match the ScoreRequest schema: " + string.Join(" ", problems));
        }

        return Result(root, error: null, new ScoreRequest
        {
            RequestId = request.RequestId!,
            Model = new ScoreRequestModel { Name = request.ModelName!, Version = request.ModelVersion },
            Rows = request.Rows!,
            ReplyTo = request.ReplyTo,
            CorrelationId = request.CorrelationId,
            Deadline = request.Deadline,
        });
    }

    private static ReadScoreRequest Failed(Fields root, string error) => Result(root, error, request: null);

    /// <summary>The request or the error, and the answer fields: from the envelope's message when there is one, else from the root.</summary>
    private static ReadScoreRequest Result(Fields root, string? error, ScoreRequest? request)
    {
        var envelope = IsEnvelope(root);
        var fields = envelope ? root.Envelope! : root;
        return new ReadScoreRequest
        {
            Request = request,
            Error = error,
            RequestId = fields.RequestId,
            ModelName = fields.ModelName,
            ReplyTo = fields.ReplyTo,
            CorrelationId = fields.CorrelationId,
            ResponseAddress = envelope && root.ResponseAddress is { } address && Uri.TryCreate(address, UriKind.Absolute, out var uri) ? uri : null,
            EnvelopeRequestId = envelope ? root.RequestId : null,
            ConversationId = envelope ? root.ConversationId : null,
        };
    }

    /// <summary>A MassTransit envelope has the request under "message" (and no rows of its own).</summary>
    private static bool IsEnvelope(Fields root) => root.Envelope is not null && root.Rows is null;

    /// <summary>Second, lenient pass over a body that failed the schema: the fields an answer needs, wherever they are.</summary>
    private static Fields? ReadWhatWeCan(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        try
        {
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            var fields = Lenient(root);
            if (Property(root, "message") is { ValueKind: JsonValueKind.Object } message && Property(root, "rows") is null)
            {
                fields.Envelope = Lenient(message);
            }

            return fields;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }

        static Fields Lenient(JsonElement element) => new()
        {
            RequestId = Scalar(Property(element, "requestId")),
            ModelName = Property(element, "model") is { ValueKind: JsonValueKind.Object } model ? Scalar(Property(model, "name")) : null,
            ReplyTo = Scalar(Property(element, "replyTo")),
            CorrelationId = Scalar(Property(element, "correlationId")),
            ResponseAddress = Scalar(Property(element, "responseAddress")),
            ConversationId = Scalar(Property(element, "conversationId")),
        };

        static JsonElement? Property(JsonElement element, string name)
        {
            foreach (var property in element.EnumerateObject())
            {
                if (property.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    return property.Value;
                }
            }

            return null;
        }

        static string? Scalar(JsonElement? element) => element switch
        {
            { ValueKind: JsonValueKind.String } e => e.GetString(),
            { ValueKind: JsonValueKind.Number } e => e.GetRawText(),
            _ => null,
        };
    }

    private static void ReadObject(ref Utf8JsonReader reader, Fields fields, bool isRoot)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            switch (name.ToLowerInvariant())
            {
                case "requestid":
                    fields.RequestId = reader.TokenType == JsonTokenType.Null ? null : StringOrInteger(ref reader, "requestId");
                    break;
                case "model":
                    ReadModel(ref reader, fields);
                    break;
                case "rows":
                    fields.Rows = ReadRows(ref reader);
                    break;
                case "replyto":
                    fields.ReplyTo = NullableString(ref reader, "replyTo");
                    break;
                case "correlationid":
                    fields.CorrelationId = reader.TokenType == JsonTokenType.Null ? null : StringOrInteger(ref reader, "correlationId");
                    break;
                case "deadline":
                    fields.Deadline = reader.TokenType switch
                    {
                        JsonTokenType.Null => null,
                        JsonTokenType.String when reader.TryGetDateTimeOffset(out var deadline) => deadline,
                        JsonTokenType.String => throw new SchemaException($"deadline must be an ISO 8601 date and time with offset, got \"{Trim(reader.GetString())}\"."),
                        _ => throw Schema("deadline", "a string", reader.TokenType),
                    };
                    break;
                case "message" when isRoot && reader.TokenType == JsonTokenType.StartObject:
                    fields.Envelope = new Fields();
                    ReadObject(ref reader, fields.Envelope, isRoot: false);
                    break;
                case "responseaddress" when isRoot:
                    fields.ResponseAddress = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    reader.Skip();
                    break;
                case "conversationid" when isRoot:
                    fields.ConversationId = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    reader.Skip();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            throw new JsonException($"expected a property name or '}}', found {Describe(reader.TokenType)}");
        }
    }

    private static void ReadModel(ref Utf8JsonReader reader, Fields fields)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Schema("model", "an object with name and optional version", reader.TokenType);
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (name.Equals("name", StringComparison.OrdinalIgnoreCase))
            {
                fields.ModelName = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Schema("model.name", "a string", reader.TokenType);
            }
            else if (name.Equals("version", StringComparison.OrdinalIgnoreCase))
            {
                fields.ModelVersion = reader.TokenType == JsonTokenType.Null ? null : StringOrInteger(ref reader, "model.version");
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private static string StringOrInteger(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString()!,
        JsonTokenType.Number when reader.TryGetInt64(out var integer) => integer.ToString(CultureInfo.InvariantCulture),
        _ => throw Schema(field, "a string or an integer", reader.TokenType),
    };

    private static string? NullableString(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => reader.GetString(),
        _ => throw Schema(field, "a string", reader.TokenType),
    };

    private static SchemaException Schema(string field, string expected, JsonTokenType found) =>
        new($"{field} must be {expected}, found {Describe(found)}.");

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.None => "nothing",
        _ => token.ToString(),
    };

    private static string? Trim(string? text) => text is { Length: > MaxErrorTextLength } ? text[..MaxErrorTextLength] + "…" : text;

    private sealed class Fields
    {
        public string? RequestId { get; set; }

        public string? ModelName { get; set; }

        public string? ModelVersion { get; set; }

        public List<ScoreRequestRow>? Rows { get; set; }

        public string? ReplyTo { get; set; }

        public string? CorrelationId { get; set; }

        public DateTimeOffset? Deadline { get; set; }

        public Fields? Envelope { get; set; }

        public string? ResponseAddress { get; set; }

        public string? ConversationId { get; set; }

    }

    private sealed class SchemaException(string message) : Exception(message);
}
