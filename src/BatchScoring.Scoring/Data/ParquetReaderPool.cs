using Parquet;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// Open Parquet readers kept between the chunks of one process that read the same file. Opening a file parses its
/// footer, which grows with row groups × columns: 2.7 MB and ~120 ms of CPU for a 10M-row, 66-column file with 16k-row
/// row groups — paid by every chunk of a large job when each opened the file anew. A reader is used by one chunk at a
/// time (rented, then returned) and is reused only while the file still has the length and last write time it was
/// opened with, so a replaced file is opened anew.
/// </summary>
/// <remarks>
/// Holds at most <see cref="Capacity"/> idle readers (the least recently returned are closed first) and closes any left
/// idle for <see cref="IdleLifetime"/>, so a deleted input's space is freed soon after its job.
/// </remarks>
internal sealed class ParquetReaderPool
{
    public const int DefaultCapacity = 4;

    private readonly Lock _gate = new();
    private readonly LinkedList<Idle> _idle = [];
    private readonly Timer _sweeper;
    private long _opens;

    public ParquetReaderPool(int capacity = DefaultCapacity, TimeSpan? idleLifetime = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 0);
        Capacity = capacity;
        IdleLifetime = idleLifetime ?? TimeSpan.FromSeconds(30);
        _sweeper = new Timer(_ => Sweep(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The pool of this process (the worker's chunks read through it).</summary>
    public static ParquetReaderPool Shared { get; } = new();

    public int Capacity { get; }

    public TimeSpan IdleLifetime { get; }

    /// <summary>Files opened through this pool since it was made (for tests and measurements).</summary>
    public long Opens => Interlocked.Read(ref _opens);

    public int IdleCount
    {
        get
        {
            lock (_gate)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>An idle reader of the file as it is now, or a newly opened one; give it back with <see cref="Return"/>.</summary>
    public async Task<(ParquetReader Reader, ParquetFileVersion Version)> RentAsync(
        string path, Func<string, CancellationToken, Task<(ParquetReader Reader, ParquetFileVersion Version)>> open, CancellationToken cancellationToken)
    {
        var current = ParquetFileVersion.OfPath(path);
        List<ParquetReader>? stale = null;
        (ParquetReader Reader, ParquetFileVersion Version)? found = null;
        lock (_gate)
        {
            for (var node = _idle.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Path == path)
                {
                    if (found is null && current == node.Value.Version)
                    {
                        found = (node.Value.Reader, node.Value.Version);
                        _idle.Remove(node);
                    }
                    else if (current != node.Value.Version)
                    {
                        (stale ??= []).Add(node.Value.Reader);
                        _idle.Remove(node);
                    }
                }

                node = next;
            }
        }

        await DisposeAllAsync(stale);
        if (found is { } reused)
        {
            return reused;
        }

        Interlocked.Increment(ref _opens);
        return await open(path, cancellationToken);
    }

    /// <summary>Keeps a reader that read without error for the next chunk of its file; closes the least recently used beyond capacity.</summary>
    public void Return(string path, ParquetReader reader, ParquetFileVersion version)
    {
        List<ParquetReader>? closing = null;
        lock (_gate)
        {
            _idle.AddFirst(new Idle(path, reader, version, Environment.TickCount64));
            while (_idle.Count > Capacity)
            {
                (closing ??= []).Add(_idle.Last!.Value.Reader);
                _idle.RemoveLast();
            }

            if (_idle.Count > 0)
            {
                _sweeper.Change(IdleLifetime, Timeout.InfiniteTimeSpan);
            }
        }

        _ = DisposeAllAsync(closing);
    }

    private void Sweep()
    {
        List<ParquetReader>? expired = null;
        lock (_gate)
        {
            var now = Environment.TickCount64;
            for (var node = _idle.First; node is not null;)
            {
                var next = node.Next;
                if (now - node.Value.ReturnedAt >= (long)IdleLifetime.TotalMilliseconds)
                {
                    (expired ??= []).Add(node.Value.Reader);
                    _idle.Remove(node);
                }

                node = next;
            }

            if (_idle.Count > 0)
            {
                _sweeper.Change(IdleLifetime, Timeout.InfiniteTimeSpan);
            }
        }

        _ = DisposeAllAsync(expired);
    }

    private static async Task DisposeAllAsync(List<ParquetReader>? readers)
    {
        foreach (var reader in readers ?? [])
        {
            await reader.DisposeAsync();
        }
    }

    private sealed record Idle(string Path, ParquetReader Reader, ParquetFileVersion Version, long ReturnedAt);
}

/// <summary>Which version of a file was opened: its length and last write time (UTC).</summary>
internal readonly record struct ParquetFileVersion(long Length, DateTime LastWriteUtc)
{
    /// <summary>The file at <paramref name="path"/> as it is now (default when it is gone: never equal to an opened one).</summary>
    public static ParquetFileVersion OfPath(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? new ParquetFileVersion(info.Length, info.LastWriteTimeUtc) : default;
    }
}
