namespace BatchScoring.Application;

/// <summary>
/// How chunks survive transient failures and lost messages, section "BatchScoring:ChunkRetry" (see docs/job-failures.md):
/// <code>
/// "ChunkRetry": { "InPlaceRetries": 2, "InPlaceDelayMilliseconds": 500, "BackoffSeconds": 5, "MaxBackoffSeconds": 120,
///                 "MaxFailures": 10, "MaxRetryMinutes": 15, "MaxCrashes": 3, "LostAfterSeconds": 120, "MaxSends": 20 }
/// </code>
/// </summary>
public sealed class ChunkRetryOptions
{
    /// <summary>Retries inside one delivery, for blips (a deadlock, a dropped connection); they hold a consumer slot.</summary>
    public int InPlaceRetries { get; set; } = 2;

    /// <summary>Delay before the first in-place retry; doubles for each next one.</summary>
    public int InPlaceDelayMilliseconds { get; set; } = 500;

    /// <summary>After a delivery failed transiently, the reconciler re-sends the chunk this long after (doubling per failure).</summary>
    public int BackoffSeconds { get; set; } = 5;

    public int MaxBackoffSeconds { get; set; } = 120;

    /// <summary>Deliveries that may fail transiently before the chunk fails.</summary>
    public int MaxFailures { get; set; } = 10;

    /// <summary>Time from a chunk's first transient failure after which the next failure fails it.</summary>
    public int MaxRetryMinutes { get; set; } = 15;

    /// <summary>Attempts that ended without an outcome (the worker died mid-chunk) before the chunk is failed as poison.</summary>
    public int MaxCrashes { get; set; } = 3;

    /// <summary>
    /// A pending chunk of a job that made no progress for this long, and whose message was sent (and the chunk started)
    /// longer ago, is presumed lost and re-sent; the wait doubles with every re-send (up to 64 times).
    /// </summary>
    public int LostAfterSeconds { get; set; } = 120;

    /// <summary>Messages sent for one chunk before the reconciler fails it instead of sending another.</summary>
    public int MaxSends { get; set; } = 20;

    public TimeSpan InPlaceDelay(int retry) => TimeSpan.FromMilliseconds(InPlaceDelayMilliseconds * Math.Pow(2, retry));

    public IEnumerable<string> Validate(string section)
    {
        if (InPlaceRetries is < 0 or > 10)
        {
            yield return $"{section}:{nameof(InPlaceRetries)} must be between 0 and 10 (was {InPlaceRetries}).";
        }

        if (InPlaceDelayMilliseconds is < 0 or > 60_000)
        {
            yield return $"{section}:{nameof(InPlaceDelayMilliseconds)} must be between 0 and 60000 (was {InPlaceDelayMilliseconds}).";
        }

        if (BackoffSeconds < 1)
        {
            yield return $"{section}:{nameof(BackoffSeconds)} must be at least 1 (was {BackoffSeconds}).";
        }

        if (MaxBackoffSeconds < BackoffSeconds)
        {
            yield return $"{section}:{nameof(MaxBackoffSeconds)} must be at least {nameof(BackoffSeconds)} (was {MaxBackoffSeconds}).";
        }

        if (MaxFailures < 1)
        {
            yield return $"{section}:{nameof(MaxFailures)} must be at least 1 (was {MaxFailures}).";
        }

        if (MaxRetryMinutes < 0)
        {
            yield return $"{section}:{nameof(MaxRetryMinutes)} must not be negative (was {MaxRetryMinutes}).";
        }

        if (MaxCrashes < 1)
        {
            yield return $"{section}:{nameof(MaxCrashes)} must be at least 1 (was {MaxCrashes}).";
        }

        if (LostAfterSeconds < 1)
        {
            yield return $"{section}:{nameof(LostAfterSeconds)} must be at least 1 (was {LostAfterSeconds}).";
        }

        if (MaxSends < 1)
        {
            yield return $"{section}:{nameof(MaxSends)} must be at least 1 (was {MaxSends}).";
        }
    }
}
