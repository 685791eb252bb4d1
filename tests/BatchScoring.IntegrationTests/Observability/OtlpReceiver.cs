using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BatchScoring.IntegrationTests.Observability;

/// <summary>One span as an OTLP collector received it.</summary>
public sealed record ReceivedSpan(string Service, string Scope, string TraceId, string SpanId, string ParentSpanId, string Name, int Kind);

/// <summary>
/// An OTLP/HTTP trace endpoint (<c>POST /v1/traces</c>, protobuf) on a free loopback port: what the service's real
/// exporter sends, decoded with a small reader of the protobuf wire format (opentelemetry-proto trace/v1).
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    public string Endpoint { get; private set; } = "";

    public IReadOnlyCollection<ReceivedSpan> Spans => _spans.ToArray();

    public static async Task<OtlpReceiver> StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            foreach (var span in Decode(body.ToArray()))
            {
                receiver._spans.Enqueue(span);
            }

            return Results.Bytes([], "application/x-protobuf");
        });
        await app.StartAsync(cancellationToken);
        receiver.Endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return receiver;
    }

    /// <summary>The <c>OTEL_*</c> settings that point a service's exporter here, flushing every 200 ms.</summary>
    public Dictionary<string, string> Settings(string serviceName) => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["OTEL_SERVICE_NAME"] = serviceName,
    };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>ExportTraceServiceRequest: resource_spans = 1 → resource = 1 (attributes = 1), scope_spans = 2 → scope = 1 (name = 1), spans = 2.</summary>
    public static IEnumerable<ReceivedSpan> Decode(byte[] request)
    {
        foreach (var (field, resourceSpans) in Fields(request))
        {
            if (field != 1)
            {
                continue;
            }

            var service = "";
            foreach (var (f, value) in Fields(resourceSpans))
            {
                if (f == 1)
                {
                    service = Attributes(value).GetValueOrDefault("service.name", "");
                }
            }

            foreach (var (f, scopeSpans) in Fields(resourceSpans))
            {
                if (f != 2)
                {
                    continue;
                }

                var scope = "";
                foreach (var (g, value) in Fields(scopeSpans))
                {
                    if (g == 1)
                    {
                        scope = Text(Fields(value).FirstOrDefault(x => x.Field == 1).Value);
                    }
                }

                foreach (var (g, span) in Fields(scopeSpans))
                {
                    if (g == 2)
                    {
                        yield return Span(service, scope, span);
                    }
                }
            }
        }
    }

    /// <summary>Span: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6.</summary>
    private static ReceivedSpan Span(string service, string scope, byte[] span)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        var kind = 0;
        foreach (var (field, value) in Fields(span))
        {
            switch (field)
            {
                case 1: traceId = Convert.ToHexStringLower(value); break;
                case 2: spanId = Convert.ToHexStringLower(value); break;
                case 4: parent = Convert.ToHexStringLower(value); break;
                case 5: name = Text(value); break;
                case 6: kind = (int)Varint(value, 0).Value; break;
            }
        }

        return new ReceivedSpan(service, scope, traceId, spanId, parent, name, kind);
    }

    /// <summary>Resource attributes: KeyValue (key = 1, value = 2 → AnyValue string_value = 1).</summary>
    private static Dictionary<string, string> Attributes(byte[] resource)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, pair) in Fields(resource))
        {
            if (field != 1)
            {
                continue;
            }

            var key = "";
            var text = "";
            foreach (var (f, value) in Fields(pair))
            {
                if (f == 1)
                {
                    key = Text(value);
                }
                else if (f == 2)
                {
                    text = Text(Fields(value).FirstOrDefault(x => x.Field == 1).Value);
                }
            }

            attributes[key] = text;
        }

        return attributes;
    }

    private static string Text(byte[]? value) => value is null ? "" : System.Text.Encoding.UTF8.GetString(value);

    /// <summary>The fields of one message; a varint's bytes are returned re-encoded, fixed fields as their bytes.</summary>
    private static List<(int Field, byte[] Value)> Fields(byte[] message)
    {
        var fields = new List<(int, byte[])>();
        var position = 0;
        while (position < message.Length)
        {
            var (key, next) = Varint(message, position);
            position = next;
            var field = (int)(key >> 3);
            switch ((int)(key & 7))
            {
                case 0:
                    var start = position;
                    position = Varint(message, position).Next;
                    fields.Add((field, message[start..position]));
                    break;
                case 1:
                    fields.Add((field, message[position..(position + 8)]));
                    position += 8;
                    break;
                case 2:
                    var (length, at) = Varint(message, position);
                    fields.Add((field, message[at..(at + (int)length)]));
                    position = at + (int)length;
                    break;
                case 5:
                    fields.Add((field, message[position..(position + 4)]));
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"wire type {key & 7} at byte {position}");
            }
        }

        return fields;
    }

    private static (ulong Value, int Next) Varint(byte[] data, int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = data[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return (value, position);
            }
        }
    }
}
