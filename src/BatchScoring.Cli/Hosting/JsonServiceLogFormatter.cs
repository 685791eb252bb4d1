using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace BatchScoring.Cli.Hosting;

/// <summary>
/// <c>serve</c>'s console log as one JSON object per line (<c>BatchScoring:LogFormat=json</c>): time, level, category,
/// event id, message, the exception summary, the trace and span ids, and every scope value (job id and chunk index
/// while a chunk is scored). Like the text format, every string passes through the secret redactor.
/// </summary>
public sealed class JsonServiceLogFormatter(IOptionsMonitor<ServiceLogFormatterOptions> options) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "batchscore-json";

    private const string OriginalFormat = "{OriginalFormat}";

    /// <summary>The fixed fields: a scope or message value of the same name is written with a leading underscore.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal)
    {
        "timestamp", "level", "category", "eventId", "message", "exception", "traceId", "spanId",
    };

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }

        var settings = options.CurrentValue;
        var redactor = settings.Redactor;
        var scope = new Dictionary<string, string>(StringComparer.Ordinal);
        scopeProvider?.ForEachScope(static (value, values) => AddValues(value, values), scope);
        if (Activity.Current is { } activity)
        {
            scope["TraceId"] = activity.TraceId.ToHexString();
            scope["SpanId"] = activity.SpanId.ToHexString();
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("timestamp", DateTimeOffset.UtcNow);
            json.WriteString("level", logEntry.LogLevel.ToString());
            json.WriteString("category", logEntry.Category);
            json.WriteNumber("eventId", logEntry.EventId.Id);
            json.WriteString("message", redactor.Redact(message ?? ""));
            if (logEntry.Exception is { } exception)
            {
                json.WriteString("exception", redactor.Redact(settings.Verbose ? exception.ToString() : ServiceLogFormatter.Summary(exception)));
            }

            if (scope.Remove("TraceId", out var traceId))
            {
                json.WriteString("traceId", traceId);
            }

            if (scope.Remove("SpanId", out var spanId))
            {
                json.WriteString("spanId", spanId);
            }

            scope.Remove("ParentId");
            if (logEntry.State is IEnumerable<KeyValuePair<string, object?>> state)
            {
                AddValues(state, scope);
            }

            foreach (var (key, value) in scope)
            {
                var name = JsonName(key);
                json.WriteString(Reserved.Contains(name) ? "_" + name : name, redactor.Redact(value));
            }

            json.WriteEndObject();
        }

        textWriter.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    private static void AddValues(object? values, Dictionary<string, string> into)
    {
        if (values is IEnumerable<KeyValuePair<string, object?>> pairs)
        {
            foreach (var (key, value) in pairs)
            {
                if (key != OriginalFormat && value is not null)
                {
                    into[key] = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                }
            }
        }
    }

    /// <summary>camelCase, as the fixed fields: <c>JobId</c> → <c>jobId</c>.</summary>
    private static string JsonName(string key) => key.Length == 0 || char.IsLower(key[0]) ? key : char.ToLowerInvariant(key[0]) + key[1..];
}
