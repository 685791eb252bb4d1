using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BatchScoring.IntegrationTests.Drift;

/// <summary>
/// A Kestrel endpoint in the test process that records every POST (path, Standard Webhooks headers, raw body) and
/// answers with the given status codes in turn, then 204.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<ReceivedWebhook> _received = Channel.CreateUnbounded<ReceivedWebhook>();
    private readonly ConcurrentQueue<int> _answers;

    private WebhookReceiver(IEnumerable<int> answers)
    {
        _answers = new ConcurrentQueue<int>(answers);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.MapPost("/{**path}", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var headers = context.Request.Headers;
            _received.Writer.TryWrite(new ReceivedWebhook(
                context.Request.Path + context.Request.QueryString, headers["webhook-id"].ToString(), headers["webhook-timestamp"].ToString(),
                headers["webhook-signature"].ToString(), body.ToArray()));
            return Results.StatusCode(_answers.TryDequeue(out var status) ? status : StatusCodes.Status204NoContent);
        });
    }

    /// <summary>http://127.0.0.1:port, without a path.</summary>
    public Uri Origin { get; private set; } = null!;

    public static async Task<WebhookReceiver> StartAsync(params int[] answers)
    {
        var receiver = new WebhookReceiver(answers);
        await receiver._app.StartAsync();
        receiver.Origin = new Uri(receiver._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return receiver;
    }

    /// <summary>A fresh Standard Webhooks secret: whsec_ + base64 of 32 random bytes.</summary>
    public static string NewSecret() => "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public async Task<ReceivedWebhook> NextAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        return await _received.Reader.ReadAsync(limit.Token);
    }

    public ReceivedWebhook? TryNext() => _received.Reader.TryRead(out var received) ? received : null;

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>One POST as it arrived.</summary>
public sealed record ReceivedWebhook(string PathAndQuery, string Id, string Timestamp, string Signature, byte[] Body)
{
    public JsonElement Json
    {
        get
        {
            using var document = JsonDocument.Parse(Body);
            return document.RootElement.Clone();
        }
    }

    /// <summary>
    /// The Standard Webhooks check, computed here rather than with the sender's library: one of the space-separated
    /// signatures is <c>v1,</c> + base64(HMAC-SHA256(key, "id.timestamp." + body)), key = the secret's base64 part.
    /// </summary>
    public bool IsSignedWith(string secret)
    {
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        var signed = Encoding.UTF8.GetBytes($"{Id}.{Timestamp}.").Concat(Body).ToArray();
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, signed));
        return Signature.Split(' ').Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), Encoding.ASCII.GetBytes(expected)));
    }
}
