using System.Diagnostics;
using System.Threading.Channels;

namespace BatchScoring.Scoring.Batching;

/// <summary>Rows [<see cref="Start"/>, <see cref="Start"/> + <see cref="Count"/>) of one queued item.</summary>
public readonly record struct BatchSlice<T>(T Item, int Start, int Count);

/// <summary>Why a batch was closed.</summary>
public enum BatchCloseReason
{
    /// <summary>It reached the row limit.</summary>
    Size,

    /// <summary>The oldest row in it had waited the maximum queue delay.</summary>
    Time,

    /// <summary>Nothing more was queued and the delay is zero, or the batcher is completing.</summary>
    Drained,
}

/// <summary>A formed batch: slices in queue order, their total rows, and why the batch was closed.</summary>
public sealed record FormedBatch<T>(IReadOnlyList<BatchSlice<T>> Slices, int Rows, BatchCloseReason Reason);

/// <summary>
/// Dynamic batching in the manner of Triton's dynamic batcher, counted in rows: items (each with one or more
/// rows) are queued; one loop takes them in order and closes a batch when it holds <c>maxBatchRows</c> rows, or
/// when the first item in it has waited <c>maxQueueDelay</c> since it was queued, whichever comes first. An item
/// larger than the remaining room is split: the rest opens the next batch. The handler runs one batch at a time
/// (it may hand work off and return early to overlap the next batch with it). Host-free; one instance per
/// stream of compatible items (e.g. per model version).
/// </summary>
public sealed class DynamicBatcher<T> where T : class
{
    private readonly Channel<Entry> _queue = Channel.CreateUnbounded<Entry>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly Func<T, int> _rowsOf;
    private readonly Func<T, bool> _admit;
    private readonly Func<FormedBatch<T>, CancellationToken, ValueTask> _handler;
    private readonly long _maxDelayTicks;
    private long _queuedRows;

    // Set while the loop waits for a batch to fill: completed by the enqueue that brings the queue to _fillRows.
    private TaskCompletionSource? _filling;
    private long _fillRows;

    /// <param name="maxBatchRows">Row limit of a batch (at least 1).</param>
    /// <param name="maxQueueDelay">How long the first item of a batch may wait for more; zero takes only what is already queued.</param>
    /// <param name="rowsOf">Rows of an item (at least 1).</param>
    /// <param name="admit">Called once per item when the loop takes it from the queue; false drops it (e.g. its deadline passed; the callee answers it).</param>
    /// <param name="handler">Runs each formed batch.</param>
    public DynamicBatcher(
        int maxBatchRows,
        TimeSpan maxQueueDelay,
        Func<T, int> rowsOf,
        Func<T, bool> admit,
        Func<FormedBatch<T>, CancellationToken, ValueTask> handler)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchRows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxQueueDelay, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(rowsOf);
        ArgumentNullException.ThrowIfNull(admit);
        ArgumentNullException.ThrowIfNull(handler);
        MaxBatchRows = maxBatchRows;
        MaxQueueDelay = maxQueueDelay;
        _maxDelayTicks = (long)(maxQueueDelay.TotalSeconds * Stopwatch.Frequency);
        _rowsOf = rowsOf;
        _admit = admit;
        _handler = handler;
    }

    public int MaxBatchRows { get; }

    public TimeSpan MaxQueueDelay { get; }

    /// <summary>Rows queued and not yet taken into a batch.</summary>
    public long QueuedRows => Interlocked.Read(ref _queuedRows);

    /// <summary>Queues an item; false once <see cref="Complete"/> was called.</summary>
    public bool TryEnqueue(T item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var rows = _rowsOf(item);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1, nameof(item));
        if (!_queue.Writer.TryWrite(new Entry(item, rows, Stopwatch.GetTimestamp())))
        {
            return false;
        }

        // Counted after the write, so a loop that sees enough rows also finds them in the queue.
        var queued = Interlocked.Add(ref _queuedRows, rows);
        if (Volatile.Read(ref _filling) is { } filling && queued >= Volatile.Read(ref _fillRows))
        {
            filling.TrySetResult();
        }

        return true;
    }

    /// <summary>No more items; <see cref="RunAsync"/> returns once the queued ones have been batched.</summary>
    public void Complete()
    {
        _queue.Writer.TryComplete();
        Volatile.Read(ref _filling)?.TrySetResult();
    }

    /// <summary>The batching loop: forms batches until the queue is completed and empty, or until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var reader = _queue.Reader;
        Entry? carry = null;
        var carryStart = 0;
        while (true)
        {
            if (carry is null)
            {
                if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                if (!reader.TryRead(out var first) || !Admit(first))
                {
                    continue;
                }

                carry = first;
                carryStart = 0;
            }

            var closeAt = carry.EnqueuedAt + _maxDelayTicks;
            var slices = new List<BatchSlice<T>>();
            var rows = 0;
            BatchCloseReason reason;
            while (true)
            {
                if (carry is not null)
                {
                    var take = Math.Min(carry.Rows - carryStart, MaxBatchRows - rows);
                    slices.Add(new BatchSlice<T>(carry.Item, carryStart, take));
                    rows += take;
                    carryStart += take;
                    if (carryStart == carry.Rows)
                    {
                        carry = null;
                    }
                }

                if (rows >= MaxBatchRows)
                {
                    reason = BatchCloseReason.Size;
                    break;
                }

                if (reader.TryRead(out var next))
                {
                    if (Admit(next))
                    {
                        carry = next;
                        carryStart = 0;
                    }

                    continue;
                }

                var wait = closeAt - Stopwatch.GetTimestamp();
                if (wait <= 0)
                {
                    reason = _maxDelayTicks == 0 ? BatchCloseReason.Drained : BatchCloseReason.Time;
                    break;
                }

                if (reader.Completion.IsCompleted)
                {
                    reason = BatchCloseReason.Drained;
                    break;
                }

                // Timers count whole milliseconds: a shorter wait would time out at once, and the loop would spin
                // (with an exception per turn) until the batch's close time.
                var waitMs = Math.Max(1, Math.Ceiling(wait * 1000.0 / Stopwatch.Frequency));
                await WaitToFillAsync(MaxBatchRows - rows, TimeSpan.FromMilliseconds(waitMs), cancellationToken).ConfigureAwait(false);
            }

            await _handler(new FormedBatch<T>(slices, rows, reason), cancellationToken).ConfigureAwait(false);
        }
    }

    private bool Admit(Entry entry)
    {
        // Rows leave the queue count when taken, whether they are batched or dropped.
        Interlocked.Add(ref _queuedRows, -entry.Rows);
        return _admit(entry.Item);
    }

    /// <summary>
    /// Waits until the queue holds the rows the open batch still needs, the timeout passes, or the queue completes.
    /// Waking once per batch rather than once per arriving item matters under load: thousands of single-row
    /// requests a second would otherwise each wake this loop for nothing.
    /// </summary>
    private async Task WaitToFillAsync(int rowsNeeded, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var filling = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _fillRows, rowsNeeded);
        Interlocked.Exchange(ref _filling, filling);
        try
        {
            // Checked after publishing the waiter: an enqueue before it is seen here, one after it completes the waiter.
            if (QueuedRows >= rowsNeeded || _queue.Reader.Completion.IsCompleted)
            {
                return;
            }

            await filling.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            Interlocked.Exchange(ref _filling, null);
        }
    }

    private sealed record Entry(T Item, int Rows, long EnqueuedAt);
}
