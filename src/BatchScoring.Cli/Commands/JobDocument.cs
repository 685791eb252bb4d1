using System.Buffers;
using System.Text;
using System.Text.Json;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// A job's status as the API answered it, read as a JSON document instead of through the object serializer: the
/// job path (submit, status, <c>--wait</c>) needs a dozen top-level values, the exit code and the document itself for
/// <c>--json</c>, while System.Text.Json's metadata for <see cref="JobStatus"/> is generic code a short-lived command
/// JIT-compiles on every run (ADR-011).
/// </summary>
internal sealed class JobDocument
{
    private readonly JsonElement _root;

    private JobDocument(JsonElement root)
    {
        _root = root;
        Id = root.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String && id.TryGetGuid(out var guid)
            ? guid
            : throw new JsonException("A job status has no id.");
        State = String("state") ?? throw new JsonException("A job status has no state.");
    }

    public Guid Id { get; }

    public string State { get; }

    public string Model => String("model") ?? "";

    public int ModelVersion => (int)Number("modelVersion");

    public string Input => String("input") ?? "";

    public long TotalRows => Number("totalRows");

    public long ScoredRows => Number("scoredRows");

    public long FailedRows => Number("failedRows");

    public int ChunksTotal => (int)Number("chunksTotal");

    public int ChunksDone => (int)Number("chunksDone");

    public string ModelSha256 => String("modelSha256") ?? "";

    public int ChunksFailed => (int)Number("chunksFailed");

    public double? RowsPerSecond => Double("rowsPerSecond");

    public double? EtaSeconds => Double("etaSeconds");

    public string? OutputTable => String("outputTable");

    public string? OutputParquet => String("outputParquet");

    public string? Error => String("error");

    /// <summary>The long poll's <c>since</c>: kept as the API wrote it, so it round-trips exactly.</summary>
    public string? UpdatedAt => String("updatedAt");

    /// <summary>The most frequent failure reasons with their counts, most frequent first.</summary>
    public IReadOnlyList<FailureReasonCount> FailureSummary =>
        _root.TryGetProperty("failureSummary", out var summary) && summary.ValueKind == JsonValueKind.Array
            ? [.. summary.EnumerateArray()
                .Where(item => item.ValueKind == JsonValueKind.Object)
                .Select(item => new FailureReasonCount(
                    item.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.String ? reason.GetString()! : "",
                    item.TryGetProperty("count", out var count) && count.TryGetInt64(out var n) ? n : 0))]
            : [];

    /// <summary>Seconds per stage; null when the API reports none.</summary>
    public JobStageSeconds? Stages =>
        _root.TryGetProperty("stages", out var stages) && stages.ValueKind == JsonValueKind.Object
            ? new JobStageSeconds(
                Double(stages, "reading") ?? 0, Double(stages, "converting") ?? 0, Double(stages, "inferring") ?? 0,
                Double(stages, "copying") ?? 0, Double(stages, "writingParquet") ?? 0, Double(stages, "waiting") ?? 0)
            : null;

    /// <summary>The challenger and its comparison (a nested document, rare: read with the serializer when present).</summary>
    public ChallengerStatus? Challenger =>
        _root.TryGetProperty("challenger", out var challenger) && challenger.ValueKind == JsonValueKind.Object
            ? challenger.Deserialize<ChallengerStatus>(ApiClient.Json)
            : null;

    public static async Task<JobDocument> ReadAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var document = await JsonDocument.ParseAsync(stream, default, cancellationToken);
        return Parse(document.RootElement);
    }

    /// <summary>Throws <see cref="JsonException"/> when the element is not a job status (no id or state).</summary>
    public static JobDocument Parse(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object ? new JobDocument(root.Clone()) : throw new JsonException("A job status is a JSON object.");

    /// <summary>
    /// The document as <c>--json</c> prints it, indented like every other <c>--json</c> output. Values are copied as the
    /// API wrote them: re-encoding would escape what the API left as is (the <c>+</c> of a time offset).
    /// </summary>
    public string ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            WriteIndented(writer, _root);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteIndented(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject())
                {
                    writer.WritePropertyName(property.Name);
                    WriteIndented(writer, property.Value);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteIndented(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteRawValue(element.GetRawText(), skipInputValidation: true);
                break;
        }
    }

    private string? String(string name) =>
        _root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private double? Double(string name) => Double(_root, name);

    private static double? Double(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;

    private long Number(string name) =>
        _root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : 0;
}
