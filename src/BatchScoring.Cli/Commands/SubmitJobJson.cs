using System.Buffers;
using System.Text.Json;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// The body of <c>POST /api/jobs</c>, written with <see cref="Utf8JsonWriter"/>: what the object serializer would write
/// (web naming, nulls written), without the generic metadata code a short-lived command would JIT-compile (ADR-011).
/// A test compares it with the serializer's output for a request with every property set.
/// </summary>
internal static class SubmitJobJson
{
    public static byte[] Write(SubmitScoringJob job)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("model", job.Model);
            writer.WriteString("modelVersion", job.ModelVersion);
            writer.WriteString("input", job.Input);
            writer.WriteString("inputSql", job.InputSql);
            writer.WriteString("inputSource", job.InputSource);
            writer.WriteString("keyColumn", job.KeyColumn);
            Strings(writer, "passthrough", job.Passthrough);
            Strings(writer, "features", job.Features);
            writer.WriteString("outputTable", job.OutputTable);
            writer.WriteString("outputParquet", job.OutputParquet);
            Number(writer, "chunkRows", job.ChunkRows);
            Number(writer, "batchRows", job.BatchRows);
            writer.WriteBoolean("allowNonFinite", job.AllowNonFinite);
            Number(writer, "maxFailedRows", job.MaxFailedRows);
            if (job.MaxFailedPercent is { } percent)
            {
                writer.WriteNumber("maxFailedPercent", percent);
            }
            else
            {
                writer.WriteNull("maxFailedPercent");
            }

            writer.WriteString("idempotencyKey", job.IdempotencyKey);
            writer.WriteString("challenger", job.Challenger);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void Strings(Utf8JsonWriter writer, string name, IReadOnlyList<string>? values)
    {
        if (values is null)
        {
            writer.WriteNull(name);
            return;
        }

        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }

        writer.WriteEndArray();
    }

    private static void Number(Utf8JsonWriter writer, string name, long? value)
    {
        if (value is { } number)
        {
            writer.WriteNumber(name, number);
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
