using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.CircuitBreaker;
using Polly.Timeout;
using StandardWebhooks;

namespace BatchScoring.Worker.Drift;

/// <summary>
/// POSTs <see cref="DriftDetected"/> to <see cref="DriftOptions.WebhookUrl"/> as a Standard Webhook: <c>webhook-id</c> is
/// the report id (a receiver drops retried duplicates by it), <c>webhook-timestamp</c> the send time and
/// <c>webhook-signature</c> <c>v1,</c> + base64 HMAC-SHA256 of <c>id.timestamp.body</c> under
/// <see cref="DriftOptions.WebhookSecret"/>. The client comes from the factory with the standard resilience handler
/// (retries on 5xx, 408, 429 and network errors, per-attempt and total timeouts, circuit breaker).
/// </summary>
public sealed partial class DriftWebhookSender(IHttpClientFactory clients, IOptions<DriftOptions> options, ILogger<DriftWebhookSender> logger)
    : IDriftWebhook
{
    public const string ClientName = "drift-webhook";

    public async Task SendAsync(DriftDetected detected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(detected);
        var settings = options.Value;
        if (settings.WebhookUrl is not { } url)
        {
            return;
        }

        var signer = new StandardWebhook(settings.WebhookSecret ?? throw new InvalidOperationException("BatchScoring:Drift:WebhookSecret is not set."));
        using var content = signer.MakeHttpContent(detected, detected.ReportId, DateTimeOffset.UtcNow);
        try
        {
            using var response = await clients.CreateClient(ClientName).PostAsync(url, content, cancellationToken);
            response.EnsureSuccessStatusCode();
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested
            && ex is HttpRequestException or TaskCanceledException or TimeoutRejectedException or BrokenCircuitException)
        {
            // The events are published; the webhook is a convenience on top.
            LogDeliveryFailed(logger, url.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped), detected.ReportId, ex.Message);
        }
    }

    // Only the endpoint's origin: a webhook URL often carries a token in its path or query.
    [LoggerMessage(Level = LogLevel.Warning, Message = "Drift webhook at {Origin} failed for report {Report}: {Error}")]
    private static partial void LogDeliveryFailed(ILogger logger, string origin, string report, string error);
}

public static class DriftWebhookRegistration
{
    /// <summary>The <see cref="IDriftWebhook"/> that <see cref="DriftAuditor"/> needs, on a factory client of its own.</summary>
    public static IServiceCollection AddDriftWebhook(this IServiceCollection services)
    {
        services.AddHttpClient(DriftWebhookSender.ClientName)
            // The factory's request logs print the full URL, token included.
            .RemoveAllLoggers()
            .AddStandardResilienceHandler();
        services.AddSingleton<IDriftWebhook, DriftWebhookSender>();
        return services;
    }
}
