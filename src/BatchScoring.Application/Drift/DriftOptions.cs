namespace BatchScoring.Application.Drift;

/// <summary>
/// Drift audit settings, section "BatchScoring:Drift":
/// <code>
/// "Drift": { "SampleRows": 256, "RequestSampleIntervalSeconds": 5, "WindowHours": 24, "CooldownHours": 24,
///            "RetentionDays": 7, "Schedule": "0 0 * * * ?", "WebhookUrl": null, "WebhookSecret": null,
///            "RetrainAfterDriftedAudits": 1,
///            "PsiThreshold": 0.2, "PValueThreshold": 0.01, "KsThreshold": 0.1, "MinimumRows": 100 }
/// </code>
/// </summary>
public sealed class DriftOptions
{
    public const string SectionName = "BatchScoring:Drift";

    /// <summary>
    /// Rows kept per sample (inputs and predictions): a uniform random sample of each scored chunk's rows, or of one
    /// batch per interval in request mode. 0 = no samples.
    /// </summary>
    public int SampleRows { get; set; } = 256;

    /// <summary>Seed of the samples' random choice, for reproducible tests and benchmarks; unset = a new seed per process.</summary>
    public int? SampleSeed { get; set; }

    /// <summary>Request mode takes at most one sample per model version this often (batches come every few milliseconds).</summary>
    public int RequestSampleIntervalSeconds { get; set; } = 5;

    /// <summary>An audit compares the samples of this many recent hours with the reference profile.</summary>
    public int WindowHours { get; set; } = 24;

    /// <summary>After drift events for a model version, later drifted audits store their report but publish nothing for this long.</summary>
    public int CooldownHours { get; set; } = 24;

    /// <summary>Samples older than this are deleted by the scheduled audit.</summary>
    public int RetentionDays { get; set; } = 7;

    /// <summary>Quartz cron expression (seconds first) of the scheduled audit of every profiled model version.</summary>
    public string Schedule { get; set; } = "0 0 * * * ?";

    /// <summary>Optional URL that receives a POST with the DriftDetected JSON when events are published.</summary>
    public Uri? WebhookUrl { get; set; }

    /// <summary>
    /// Signing secret of the webhook (required with <see cref="WebhookUrl"/>): Standard Webhooks' <c>whsec_</c> followed by
    /// the base64 of 24 to 64 random bytes. Each POST carries <c>webhook-id</c>, <c>webhook-timestamp</c> and
    /// <c>webhook-signature</c> (v1, HMAC-SHA256), so the receiver can tell it from anyone else's.
    /// </summary>
    public string? WebhookSecret { get; set; }

    /// <summary>
    /// RetrainingRequested waits for this many consecutive drifted audits of a model version (hysteresis: one noisy
    /// window does not retrain); DriftDetected goes out on the first. 1 = both together.
    /// </summary>
    public int RetrainAfterDriftedAudits { get; set; } = 1;

    public double PsiThreshold { get; set; } = 0.2;

    public double PValueThreshold { get; set; } = 0.01;

    /// <summary>
    /// Bonferroni: each column's test must reach <see cref="PValueThreshold"/> ÷ the number of columns, so a model
    /// with hundreds of features does not flag some by chance on every audit (the PSI rule is not affected).
    /// </summary>
    public bool CorrectPValuesForColumns { get; set; } = true;

    public double KsThreshold { get; set; } = 0.1;

    public int MinimumRows { get; set; } = 100;

    /// <summary>Rows read per audit at most (newest samples first), which bounds its memory and time.</summary>
    public int MaxAuditRows { get; set; } = 200_000;

    public IEnumerable<string> Validate()
    {
        if (SampleRows < 0)
        {
            yield return $"BatchScoring:Drift:SampleRows must not be negative (was {SampleRows}).";
        }

        if (RequestSampleIntervalSeconds < 0)
        {
            yield return $"BatchScoring:Drift:RequestSampleIntervalSeconds must not be negative (was {RequestSampleIntervalSeconds}).";
        }

        if (WindowHours < 1 || CooldownHours < 0 || RetentionDays < 1)
        {
            yield return $"BatchScoring:Drift: WindowHours ≥ 1, CooldownHours ≥ 0 and RetentionDays ≥ 1 (were {WindowHours}, {CooldownHours}, {RetentionDays}).";
        }

        if (PsiThreshold <= 0 || PValueThreshold is <= 0 or >= 1 || KsThreshold is <= 0 or >= 1 || MinimumRows < 1)
        {
            yield return "BatchScoring:Drift: PsiThreshold > 0, 0 < PValueThreshold < 1, 0 < KsThreshold < 1 and MinimumRows ≥ 1.";
        }

        if (RetrainAfterDriftedAudits is < 1 or > 100)
        {
            yield return $"BatchScoring:Drift:RetrainAfterDriftedAudits must be between 1 and 100 (was {RetrainAfterDriftedAudits}).";
        }

        if (MaxAuditRows < MinimumRows)
        {
            yield return $"BatchScoring:Drift:MaxAuditRows must be at least MinimumRows (was {MaxAuditRows}).";
        }

        // Neither value is echoed: the URL may carry a token and the secret is one.
        if (WebhookUrl is not null && (!WebhookUrl.IsAbsoluteUri || WebhookUrl.Scheme is not ("http" or "https")))
        {
            yield return "BatchScoring:Drift:WebhookUrl must be an absolute http or https URL.";
        }

        if (WebhookUrl is not null && !IsSigningSecret(WebhookSecret))
        {
            yield return "BatchScoring:Drift:WebhookSecret is required with WebhookUrl: \"whsec_\" followed by the base64 of 24 to 64 "
                + "random bytes (e.g. whsec_$(openssl rand -base64 32)).";
        }
    }

    private static bool IsSigningSecret(string? secret)
    {
        const string prefix = "whsec_";
        if (secret is null || !secret.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var key = new byte[64];
        return Convert.TryFromBase64String(secret[prefix.Length..], key, out var length) && length >= 24;
    }
}
