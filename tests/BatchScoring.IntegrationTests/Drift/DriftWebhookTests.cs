using System.Collections.Concurrent;
using System.Globalization;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Worker.Drift;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;

namespace BatchScoring.IntegrationTests.Drift;

/// <summary>
/// The drift webhook sender against a real Kestrel receiver: Standard Webhooks signatures checked with an HMAC
/// computed here, retries of transient failures by the resilience handler, and failure logs that name only the origin.
/// </summary>
public sealed class DriftWebhookTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_drift_event_arrives_signed_with_the_report_id_as_webhook_id()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var secret = WebhookReceiver.NewSecret();
        var logs = new CapturedLogs();
        await using var services = Sender(new Uri(receiver.Origin, "/hooks/drift"), secret, logs);
        var detected = Detected();

        await services.GetRequiredService<IDriftWebhook>().SendAsync(detected, Ct);

        var hook = await receiver.NextAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("/hooks/drift", hook.PathAndQuery);
        Assert.Equal(detected.ReportId, hook.Id);
        Assert.True(hook.IsSignedWith(secret), $"signature {hook.Signature}");
        Assert.False(hook.IsSignedWith(WebhookReceiver.NewSecret()));
        Assert.False((hook with { Body = [.. hook.Body, (byte)' '] }).IsSignedWith(secret));
        var sent = DateTimeOffset.FromUnixTimeSeconds(long.Parse(hook.Timestamp, CultureInfo.InvariantCulture));
        Assert.InRange(sent, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(detected.ReportId, hook.Json.GetProperty("reportId").GetString());
        Assert.Equal(0.31, hook.Json.GetProperty("psi").GetProperty("f_000").GetDouble());
        Assert.Empty(logs.AtLeast(LogLevel.Warning));
    }

    [Fact]
    public async Task Transient_failures_are_retried_with_the_same_id_and_a_valid_signature()
    {
        await using var receiver = await WebhookReceiver.StartAsync(503, 500);
        var secret = WebhookReceiver.NewSecret();
        var logs = new CapturedLogs();
        await using var services = Sender(new Uri(receiver.Origin, "/hook"), secret, logs);
        var detected = Detected();

        await services.GetRequiredService<IDriftWebhook>().SendAsync(detected, Ct);

        var attempts = new[] { await receiver.NextAsync(TimeSpan.FromSeconds(10)), await receiver.NextAsync(TimeSpan.FromSeconds(10)), await receiver.NextAsync(TimeSpan.FromSeconds(10)) };
        Assert.All(attempts, a => Assert.Equal(detected.ReportId, a.Id));
        Assert.All(attempts, a => Assert.True(a.IsSignedWith(secret)));
        Assert.Null(receiver.TryNext());
        Assert.DoesNotContain(logs.AtLeast(LogLevel.Warning), l => l.Category == typeof(DriftWebhookSender).FullName);
    }

    [Fact]
    public async Task A_failing_webhook_is_logged_by_its_origin_only_and_no_log_shows_the_token_or_secret()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Enumerable.Repeat(500, 10).ToArray());
        var token = "hookToken" + Guid.NewGuid().ToString("N")[..10];
        var secret = WebhookReceiver.NewSecret();
        var logs = new CapturedLogs();
        await using var services = Sender(new Uri(receiver.Origin, $"/t/{token}?token={token}"), secret, logs);
        var detected = Detected();

        await services.GetRequiredService<IDriftWebhook>().SendAsync(detected, Ct);

        var failure = Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Category == typeof(DriftWebhookSender).FullName);
        Assert.Contains(receiver.Origin.GetLeftPart(UriPartial.Authority), failure.Message, StringComparison.Ordinal);
        Assert.Contains(detected.ReportId, failure.Message, StringComparison.Ordinal);
        Assert.Contains("500", failure.Message, StringComparison.Ordinal);
        Assert.NotEmpty(logs.All); // the HTTP and resilience layers log at Trace and Debug too; none of it may carry the token
        Assert.All(logs.All, l => Assert.DoesNotContain(token, l.Message, StringComparison.Ordinal));
        Assert.All(logs.All, l => Assert.DoesNotContain(secret["whsec_".Length..], l.Message, StringComparison.Ordinal));
        Assert.Equal(4, Drain(receiver)); // the first attempt and the standard handler's three retries
    }

    [Fact]
    public void A_webhook_url_needs_a_standard_webhooks_secret_and_the_error_does_not_echo_either()
    {
        var url = new Uri("https://hooks.example.com/t/tokenInPath");
        string?[] refused = [null, "", "plain-secret", "whsec_" + Convert.ToBase64String(new byte[16]), "whsec_" + Convert.ToBase64String(new byte[65]), "whsec_not base64!"];
        foreach (var secret in refused)
        {
            var errors = new DriftOptions { WebhookUrl = url, WebhookSecret = secret }.Validate().ToList();
            var error = Assert.Single(errors);
            Assert.Contains("WebhookSecret", error, StringComparison.Ordinal);
            Assert.DoesNotContain("tokenInPath", error, StringComparison.Ordinal);
            Assert.True(string.IsNullOrEmpty(secret) || !error.Contains(secret, StringComparison.Ordinal));
        }

        Assert.Empty(new DriftOptions { WebhookUrl = url, WebhookSecret = WebhookReceiver.NewSecret() }.Validate());
        Assert.Empty(new DriftOptions { WebhookSecret = null }.Validate());
        Assert.Contains(
            new DriftOptions { WebhookUrl = new Uri("ftp://example.com/x"), WebhookSecret = WebhookReceiver.NewSecret() }.Validate(),
            e => e.Contains("http or https", StringComparison.Ordinal));
    }

    private static int Drain(WebhookReceiver receiver)
    {
        var count = 0;
        while (receiver.TryNext() is not null)
        {
            count++;
        }

        return count;
    }

    private static DriftDetected Detected() => new(
        "churn", 3, Guid.CreateVersion7().ToString(), new Dictionary<string, double> { ["f_000"] = 0.31 },
        new Dictionary<string, string> { ["f_000"] = "PSI 0.31 ≥ 0.2" }, DateTimeOffset.UtcNow);

    /// <summary>The sender as the service composes it, with short retry delays so the test does not wait seconds.</summary>
    private static ServiceProvider Sender(Uri url, string secret, CapturedLogs logs)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(logs));
        services.Configure<DriftOptions>(o =>
        {
            o.WebhookUrl = url;
            o.WebhookSecret = secret;
        });
        services.AddDriftWebhook();
        services.Configure<HttpStandardResilienceOptions>(DriftWebhookSender.ClientName + "-standard", o => o.Retry.Delay = TimeSpan.FromMilliseconds(10));
        return services.BuildServiceProvider();
    }

    private sealed record LogEntry(string Category, LogLevel Level, string Message);

    /// <summary>Every log line of every category and level, with its structured properties and exception.</summary>
    private sealed class CapturedLogs : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEntry> _entries = new();

        public IReadOnlyList<LogEntry> All => [.. _entries];

        public IReadOnlyList<LogEntry> AtLeast(LogLevel level) => _entries.Where(e => e.Level >= level).ToList();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new LogEntry(category, logLevel, string.Join(' ', [
                    formatter(state, exception),
                    .. state is IEnumerable<KeyValuePair<string, object?>> properties ? properties.Select(p => $"{p.Key}={p.Value}") : [],
                    exception?.ToString() ?? ""])));
        }
    }
}
