using System.Buffers;
using System.Text.Json;
using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Answers;

/// <summary>
/// Writes a <see cref="ScoreRequestCompleted"/> as the JSON of schemas/score-request-completed.schema.json (camelCase,
/// nullable members written as null, members that only a canary adds left out) without the serializer's reflection over the per-row output dictionaries:
/// one answer is written per request, thousands a second.
/// </summary>
public static class ScoreRequestCompletedJson
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static byte[] Serialize(ScoreRequestCompleted completed)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        Write(writer, completed);
        writer.Flush();

        return buffer.WrittenSpan.ToArray();
    }

    public static void Write(Utf8JsonWriter writer, ScoreRequestCompleted completed)
    {
        writer.WriteStartObject();
        writer.WriteString("requestId", completed.RequestId);
        writer.WriteString("correlationId", completed.CorrelationId);

        writer.WriteStartObject("model");
        writer.WriteString("name", completed.Model.Name);
        if (completed.Model.Version is { } version)
        {
            writer.WriteNumber("version", version);
        }
        else
        {
            writer.WriteNull("version");
        }

        if (completed.Model.CanaryVersion is { } canary)
        {
            writer.WriteNumber("canaryVersion", canary);
        }

        if (completed.Model.CanaryPercent is { } percent)
        {
            writer.WriteNumber("canaryPercent", percent);
        }

        writer.WriteEndObject();
        writer.WriteString("outcome", completed.Outcome);
        writer.WriteStartArray("scores");
        foreach (var score in completed.Scores)
        {
            writer.WriteStartObject();
            writer.WriteString("key", score.Key);
            if (score.Version is { } scoredBy)
            {
                writer.WriteNumber("version", scoredBy);
            }

            writer.WriteStartObject("outputs");
            foreach (var (name, value) in score.Outputs)
            {
                writer.WritePropertyName(name);
                WriteValue(writer, value);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("failures");
        foreach (var failure in completed.Failures)
        {
            writer.WriteStartObject();
            writer.WriteString("key", failure.Key);
            writer.WriteString("column", failure.Column);

            writer.WriteString("reason", failure.Reason);
            if (failure.Version is { } sentTo)
            {
                writer.WriteNumber("version", sentTo);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteString("error", completed.Error);

        writer.WriteString("completedAt", completed.CompletedAt);
        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case float f:
                writer.WriteNumberValue(f);
                break;
            case double d:
                writer.WriteNumberValue(d);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case int i:
                writer.WriteNumberValue(i);
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case float[] list:
                writer.WriteStartArray();
                foreach (var item in list)
                {
                    writer.WriteNumberValue(item);
                }

                writer.WriteEndArray();
                break;
            default:
                JsonSerializer.Serialize(writer, value, value.GetType(), JsonSerializerOptions.Web);
                break;
        }
    }
}
