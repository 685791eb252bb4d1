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
        Interlocked.Add(ref _queuedRows, rows);
        if (_queue.Writer.TryWrite(new Entry(item, rows, Stopwatch.GetTimestamp())))
        {
            return true;
        }

        Interlocked.Add(ref _queuedRows, -rows);
        return false;
    }

    /// <summary>No more items; <see cref="RunAsync"/> returns once the queued ones have been batched.</summary>
    public void Complete() => _queue.Writer.TryComplete();

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

                if (!await WaitForMoreAsync(reader, TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), cancellationToken).ConfigureAwait(false))
                {
                    reason = reader.Completion.IsCompleted ? BatchCloseReason.Drained : BatchCloseReason.Time;
                    break;
                }
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

    /// <summary>True when an item is ready to read; false when the wait timed out or the queue completed.</summary>
    private static async ValueTask<bool> WaitForMoreAsync(ChannelReader<Entry> reader, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Runs once per arriving item under load: a timed-out wait must not cost a thrown exception.
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var wait = reader.WaitToReadAsync(timeoutSource.Token).AsTask();
        await ((Task)wait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
        return wait.IsCompletedSuccessfully && wait.Result;
    }

    private sealed record Entry(T Item, int Rows, long EnqueuedAt);
}
