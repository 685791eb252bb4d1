using System.Diagnostics;
using System.Threading.Channels;
using BatchScoring.Scoring.Batching;

namespace BatchScoring.Scoring.Tests.Batching;

/// <summary>Batch forming of <see cref="DynamicBatcher{T}"/>: row limit vs time limit, splitting, admission, separation.</summary>
public sealed class DynamicBatcherTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Item(string Name, int Rows, bool Expired = false);

    private sealed class Harness : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Harness(int maxRows, TimeSpan delay)
        {
            Batcher = new DynamicBatcher<Item>(maxRows, delay, i => i.Rows, i => !i.Expired, (batch, _) =>
            {
                Batches.Writer.TryWrite((batch, Stopwatch.GetTimestamp()));
                return ValueTask.CompletedTask;
            });
            _loop = Batcher.RunAsync(_stop.Token);
        }

        public DynamicBatcher<Item> Batcher { get; }

        public Channel<(FormedBatch<Item> Batch, long At)> Batches { get; } = Channel.CreateUnbounded<(FormedBatch<Item>, long)>();

        public async Task<FormedBatch<Item>> NextAsync() => (await Batches.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct)).Batch;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }

    [Fact]
    public async Task Closes_a_batch_at_the_row_limit_before_the_delay()
    {
        await using var harness = new Harness(maxRows: 4, delay: TimeSpan.FromSeconds(30));
        for (var i = 0; i < 8; i++)
        {
            Assert.True(harness.Batcher.TryEnqueue(new Item($"r{i}", 1)));
        }

        var watch = Stopwatch.StartNew();
        var first = await harness.NextAsync();
        var second = await harness.NextAsync();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), "size-limited batches must not wait for the delay");
        Assert.Equal((4, BatchCloseReason.Size), (first.Rows, first.Reason));
        Assert.Equal(["r0", "r1", "r2", "r3"], first.Slices.Select(s => s.Item.Name));
        Assert.Equal(["r4", "r5", "r6", "r7"], second.Slices.Select(s => s.Item.Name));
    }

    [Fact]
    public async Task A_waiting_batch_closes_when_trickling_items_reach_the_row_limit()
    {
        await using var harness = new Harness(maxRows: 4, delay: TimeSpan.FromSeconds(30));
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            harness.Batcher.TryEnqueue(new Item($"r{i}", 1));
            await Task.Delay(40, Ct); // items trickle in: the gap between them is the scenario
        }

        // Three rows of four: the loop has opened a batch with the first and waits for the fourth (or the 30 s delay),
        // leaving the others queued until the batch can fill; it does not close early.
        await TestSupport.WaitUntilAsync(() => harness.Batcher.QueuedRows == 2, "the loop to open a batch with the first row", Ct);
        Assert.False(harness.Batches.Reader.TryRead(out _), "a batch below the row limit closed before its delay");
        harness.Batcher.TryEnqueue(new Item("r3", 2));
        var batch = await harness.NextAsync();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), "the enqueue that fills the batch must wake the loop");
        Assert.Equal((4, BatchCloseReason.Size), (batch.Rows, batch.Reason));
        Assert.Equal([("r0", 1), ("r1", 1), ("r2", 1), ("r3", 1)], batch.Slices.Select(s => (s.Item.Name, s.Count)));
    }

    [Fact]
    public async Task Complete_wakes_a_waiting_batch_and_ends_the_loop()
    {
        var batches = Channel.CreateUnbounded<FormedBatch<Item>>();
        var batcher = new DynamicBatcher<Item>(100, TimeSpan.FromSeconds(30), i => i.Rows, _ => true, (batch, _) =>
        {
            batches.Writer.TryWrite(batch);
            return ValueTask.CompletedTask;
        });
        var loop = batcher.RunAsync(Ct);
        batcher.TryEnqueue(new Item("only", 3));
        await TestSupport.WaitUntilAsync(() => batcher.QueuedRows == 0, "the loop to take the item and wait for more", Ct);
        batcher.Complete();

        var batch = await batches.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal((3, BatchCloseReason.Drained), (batch.Rows, batch.Reason));
        await loop.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.False(batcher.TryEnqueue(new Item("late", 1)));
    }

    [Fact]
    public async Task Closes_a_partial_batch_when_the_first_row_has_waited_the_delay()
    {
        var delay = TimeSpan.FromMilliseconds(150);
        await using var harness = new Harness(maxRows: 100, delay);
        var start = Stopwatch.GetTimestamp();
        harness.Batcher.TryEnqueue(new Item("a", 2));
        await Task.Delay(30, Ct); // "b" arrives later than "a": the delay counts from the first row
        harness.Batcher.TryEnqueue(new Item("b", 3));

        var batch = await harness.NextAsync();
        var waited = Stopwatch.GetElapsedTime(start);
        Assert.Equal((5, BatchCloseReason.Time), (batch.Rows, batch.Reason));
        Assert.Equal(["a", "b"], batch.Slices.Select(s => s.Item.Name));
        Assert.InRange(waited, delay - TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Zero_delay_takes_what_is_queued_and_does_not_wait()
    {
        await using var harness = new Harness(maxRows: 100, TimeSpan.Zero);
        harness.Batcher.TryEnqueue(new Item("a", 1));
        var batch = await harness.NextAsync();
        Assert.Equal(BatchCloseReason.Drained, batch.Reason);
        Assert.Equal(1, batch.Rows);
    }

    [Fact]
    public async Task Splits_an_item_larger_than_the_limit_across_batches_in_order()
    {
        await using var harness = new Harness(maxRows: 4, delay: TimeSpan.FromMilliseconds(50));
        harness.Batcher.TryEnqueue(new Item("small", 1));
        harness.Batcher.TryEnqueue(new Item("big", 10));
        harness.Batcher.TryEnqueue(new Item("tail", 1));

        var batches = new List<FormedBatch<Item>>();
        while (batches.Sum(b => b.Rows) < 12)
        {
            batches.Add(await harness.NextAsync());
        }

        Assert.Equal([4, 4, 4], batches.Select(b => b.Rows));
        Assert.Equal(
            [("small", 0, 1), ("big", 0, 3), ("big", 3, 4), ("big", 7, 3), ("tail", 0, 1)],
            batches.SelectMany(b => b.Slices).Select(s => (s.Item.Name, s.Start, s.Count)));
        Assert.Equal(0, harness.Batcher.QueuedRows);
    }

    [Fact]
    public async Task Items_refused_at_dequeue_are_dropped_and_leave_the_queue_count()
    {
        await using var harness = new Harness(maxRows: 10, delay: TimeSpan.FromMilliseconds(50));
        harness.Batcher.TryEnqueue(new Item("expired", 5, Expired: true));
        harness.Batcher.TryEnqueue(new Item("ok", 2));
        var batch = await harness.NextAsync();
        Assert.Equal(["ok"], batch.Slices.Select(s => s.Item.Name));
        Assert.Equal(0, harness.Batcher.QueuedRows);
    }

    [Fact]
    public async Task Separate_batchers_never_mix_items()
    {
        await using var alpha = new Harness(maxRows: 3, delay: TimeSpan.FromMilliseconds(50));
        await using var beta = new Harness(maxRows: 3, delay: TimeSpan.FromMilliseconds(50));
        for (var i = 0; i < 9; i++)
        {
            (i % 2 == 0 ? alpha : beta).Batcher.TryEnqueue(new Item((i % 2 == 0 ? "alpha" : "beta") + i, 1));
        }

        var alphaItems = new List<string>();
        while (alphaItems.Count < 5)
        {
            alphaItems.AddRange((await alpha.NextAsync()).Slices.Select(s => s.Item.Name));
        }

        var betaItems = new List<string>();
        while (betaItems.Count < 4)
        {
            betaItems.AddRange((await beta.NextAsync()).Slices.Select(s => s.Item.Name));
        }

        Assert.All(alphaItems, n => Assert.StartsWith("alpha", n, StringComparison.Ordinal));
        Assert.All(betaItems, n => Assert.StartsWith("beta", n, StringComparison.Ordinal));
    }

    [Fact]
    public void Rejects_invalid_settings()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicBatcher<Item>(0, TimeSpan.Zero, i => i.Rows, _ => true, (_, _) => ValueTask.CompletedTask));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicBatcher<Item>(1, TimeSpan.FromMilliseconds(-1), i => i.Rows, _ => true, (_, _) => ValueTask.CompletedTask));
    }
}
