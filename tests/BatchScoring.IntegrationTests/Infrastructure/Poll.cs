namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>Waits on a condition, never on a fixed sleep: checks it every <c>interval</c> until it holds or the deadline passes.</summary>
internal static class Poll
{
    private static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Waits until <paramref name="condition"/> holds; fails with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken cancellationToken, TimeSpan? interval = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {timeout} waiting for: {what}");
            await Task.Delay(interval ?? DefaultInterval, cancellationToken);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, CancellationToken cancellationToken, TimeSpan? interval = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what, cancellationToken, interval);
}
