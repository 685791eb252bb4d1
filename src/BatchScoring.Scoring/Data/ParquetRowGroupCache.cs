namespace BatchScoring.Scoring.Data;

/// <summary>
/// Decoded Parquet row groups shared by the chunks of one process that read pieces of the same row group (a row group
/// larger than <see cref="ParquetDataset.WholeRowGroupBound"/> is planned as several chunks, and Parquet.Net can only
/// decode it whole): the first reader decodes it, readers arriving meanwhile wait for that decode, later ones take it
/// from here. Keyed by file version (length and last write time of the open file), so a replaced file is decoded anew.
/// </summary>
/// <remarks>
/// Memory: at most <see cref="Capacity"/> decoded row groups are kept (least recently used go first; one being decoded
/// or waited for is never dropped, so while every entry is busy there may be a few more, one per reader). An entry
/// leaves as soon as its pieces have covered every row of its row group once, and after <see cref="IdleLifetime"/>
/// unused (pieces of one row group may go to other workers).
/// </remarks>
internal sealed class ParquetRowGroupCache
{
    /// <summary>Enough for the chunks a worker scores at once (ChunkConcurrency, 2 by default) plus the next one.</summary>
    public const int DefaultCapacity = 3;

    private readonly Lock _gate = new();
    private readonly Dictionary<RowGroupKey, Entry> _entries = [];
    private readonly Timer _sweeper;
    private int _capacity;
    private long _decodes;

    public ParquetRowGroupCache(int capacity = DefaultCapacity, TimeSpan? idleLifetime = null)
    {
        Capacity = capacity;
        IdleLifetime = idleLifetime ?? TimeSpan.FromSeconds(30);
        _sweeper = new Timer(_ => Sweep(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The one cache of this process (the worker's chunks read through it).</summary>
    public static ParquetRowGroupCache Shared { get; } = new();

    /// <summary>Decoded row groups kept at most; the worker sets it to its chunk concurrency + 1.</summary>
    public int Capacity
    {
        get => _capacity;
        set => _capacity = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least one row group.");
    }

    public TimeSpan IdleLifetime { get; }

    /// <summary>Row groups decoded through this cache since it was made (for tests and measurements).</summary>
    public long Decodes => Interlocked.Read(ref _decodes);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// The decoded row group <paramref name="key"/>, decoding it with <paramref name="decode"/> unless another reader
    /// has or is doing so; <paramref name="pieceStart"/> and <paramref name="pieceRows"/> say which of its
    /// <paramref name="groupRows"/> rows the caller takes, so the entry leaves once every row has been taken.
    /// An error of the decode reaches every reader waiting for it, and the entry is dropped (the next reader tries again).
    /// </summary>
    public async Task<ColumnBatch> GetAsync(
        RowGroupKey key, int pieceStart, int pieceRows, long groupRows, Func<CancellationToken, Task<ColumnBatch>> decode, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decode);
        while (true)
        {
            Entry entry;
            var owner = false;
            lock (_gate)
            {
                if (!_entries.TryGetValue(key, out entry!))
                {
                    entry = new Entry();
                    _entries[key] = entry;
                    owner = true;
                }

                entry.Users++;
                entry.LastUsed = Environment.TickCount64;
                EvictOverCapacity();
                _sweeper.Change(IdleLifetime, Timeout.InfiniteTimeSpan);
            }

            try
            {
                if (owner)
                {
                    await DecodeAsync(key, entry, decode, cancellationToken);
                }

                ColumnBatch batch;
                try
                {
                    batch = await entry.Decoded.Task.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (!owner && !cancellationToken.IsCancellationRequested)
                {
                    continue; // the reader that was decoding it was stopped, not this one: decode it here
                }

                Taken(key, entry, pieceStart, pieceRows, groupRows);
                return batch;
            }
            finally
            {
                lock (_gate)
                {
                    entry.Users--;
                    entry.LastUsed = Environment.TickCount64;
                }
            }
        }
    }

    private async Task DecodeAsync(RowGroupKey key, Entry entry, Func<CancellationToken, Task<ColumnBatch>> decode, CancellationToken cancellationToken)
    {
        try
        {
            var batch = await decode(cancellationToken);
            Interlocked.Increment(ref _decodes);
            entry.Decoded.SetResult(batch);
        }
        catch (Exception ex)
        {
            Remove(key, entry);
            if (ex is OperationCanceledException)
            {
                entry.Decoded.SetCanceled(CancellationToken.None);
            }
            else
            {
                entry.Decoded.SetException(ex);
            }

            throw;
        }
    }

    private void Taken(RowGroupKey key, Entry entry, int pieceStart, int pieceRows, long groupRows)
    {
        lock (_gate)
        {
            if (entry.Pieces.Add((pieceStart, pieceRows)))
            {
                entry.RowsTaken += pieceRows;
            }

            if (entry.RowsTaken >= groupRows)
            {
                RemoveLocked(key, entry);
            }
        }
    }

    private void Remove(RowGroupKey key, Entry entry)
    {
        lock (_gate)
        {
            RemoveLocked(key, entry);
        }
    }

    private void RemoveLocked(RowGroupKey key, Entry entry)
    {
        if (_entries.TryGetValue(key, out var current) && current == entry)
        {
            _entries.Remove(key);
        }
    }

    /// <summary>Drops the least recently used decoded entries nobody is reading while there are more than <see cref="Capacity"/>.</summary>
    private void EvictOverCapacity()
    {
        while (_entries.Count > _capacity)
        {
            var idle = _entries.Where(e => e.Value.Users == 0 && e.Value.Decoded.Task.IsCompleted).ToList();
            if (idle.Count == 0)
            {
                return;
            }

            var oldest = idle.MinBy(e => e.Value.LastUsed);
            _entries.Remove(oldest.Key);
        }
    }

    private void Sweep()
    {
        lock (_gate)
        {
            var cutoff = Environment.TickCount64 - (long)IdleLifetime.TotalMilliseconds;
            foreach (var (key, entry) in _entries.Where(e => e.Value.Users == 0 && e.Value.LastUsed <= cutoff).ToList())
            {
                _entries.Remove(key);
            }

            if (_entries.Count > 0)
            {
                _sweeper.Change(IdleLifetime, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private sealed class Entry
    {
        public TaskCompletionSource<ColumnBatch> Decoded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public HashSet<(int Start, int Rows)> Pieces { get; } = [];

        public long RowsTaken { get; set; }

        public int Users { get; set; }

        public long LastUsed { get; set; }
    }
}

/// <summary>
/// One row group of one version of a file, decoded for one set of columns: a file rewritten in place (another length or
/// last write time) is another key, so it is never served from the old decode.
/// </summary>
internal readonly record struct RowGroupKey(string Path, long Length, DateTime LastWriteUtc, int RowGroup, string Columns)
{
    public static string ColumnsKey(IReadOnlyList<SourceColumn> columns) => string.Join('\u001f', columns.Select(c => $"{c.Name}\u001e{(int)c.Kind}"));
}
