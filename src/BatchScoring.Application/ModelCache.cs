using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application;

/// <summary>
/// Loaded ONNX sessions by model version, least recently used first out. One session serves all concurrent
/// chunks of a version (ONNX Runtime's Run is thread-safe); an evicted session is disposed only once the
/// last lease on it is returned, so a running batch never loses its session.
/// </summary>
public sealed class ModelCache(IOptions<BatchScoringOptions> options, ILoggerFactory loggerFactory) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Entry> _entries = new();
    private readonly ILogger _logger = loggerFactory.CreateLogger<ModelCache>();

    public ModelLease Acquire(ModelVersionEntity version)
    {
        ArgumentNullException.ThrowIfNull(version);
        Entry entry;
        lock (_gate)
        {
            entry = _entries.FirstOrDefault(e => e.Name == version.ModelName && e.Version == version.Version) is { } cached
                ? Hit(cached)
                : AddEntry(version);
            _entries.Remove(entry);
            _entries.AddFirst(entry);
            entry.Leases++;
            EvictBeyondCapacity();
        }

        try
        {
            return new ModelLease(entry.Model.Value, () => Release(entry));
        }
        catch
        {
            Release(entry);
            lock (_gate)
            {
                _entries.Remove(entry); // a failed load is not cached: the next caller tries again
            }

            throw;
        }
    }

    /// <summary>Whether the version's session is loaded (not loading, not failed) and still cached.</summary>
    public bool IsLoaded(string name, int version)
    {
        lock (_gate)
        {
            return _entries.Any(e => e.Name == name && e.Version == version && e.Model.IsValueCreated);
        }
    }

    /// <summary>The versions whose sessions are loaded, most recently used first.</summary>
    public IReadOnlyList<(string Name, int Version)> Loaded()
    {
        lock (_gate)
        {
            return _entries.Where(e => e.Model.IsValueCreated).Select(e => (e.Name, e.Version)).ToArray();
        }
    }

    private static Entry Hit(Entry entry)
    {
        ServingMetrics.CacheHits.Add(1, ServingMetrics.Tags(entry.Name, entry.Version));
        return entry;
    }

    private Entry AddEntry(ModelVersionEntity version)
    {
        ServingMetrics.CacheMisses.Add(1, ServingMetrics.Tags(version.ModelName, version.Version));
        var settings = options.Value;
        var entry = new Entry(version.ModelName, version.Version, new Lazy<ScoringModel>(() =>
        {
            string path;
            try
            {
                // The path comes from the database: confined like every other path the service opens.
                path = settings.GetStorageRoots().Confine(version.StoragePath, $"Model {version.ModelName} v{version.Version}");
            }
            catch (PathNotAllowedException ex)
            {
                throw new ModelLoadException(ex.Message, ex);
            }

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var model = ScoringModel.Load(
                path,
                new ScoringSessionOptions
                {
                    IntraOpThreads = IntraOpThreads(settings), PreferCuda = settings.PreferCuda, EnableCpuMemArena = settings.OnnxCpuMemArena,
                    CpuRowsPerRun = settings.CpuRowsPerRun,
                },
                loggerFactory.CreateLogger<ScoringModel>(),
                version.Sha256);
            ServingMetrics.LoadSeconds.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, ServingMetrics.Tags(version.ModelName, version.Version));
            _logger.ModelLoaded(version.ModelName, version.Version, model.ExecutionProvider);
            return model;
        }));
        _entries.AddFirst(entry);
        return entry;
    }

    /// <summary>
    /// Threads per Run: the configured value, else cores ÷ concurrent chunks, so concurrent Run calls do not
    /// oversubscribe the CPU (intra-op threads × concurrent callers ≈ cores).
    /// </summary>
    public static int IntraOpThreads(BatchScoringOptions settings) =>
        settings.IntraOpThreads > 0 ? settings.IntraOpThreads : Math.Max(1, Environment.ProcessorCount / settings.ChunkConcurrency);

    private void EvictBeyondCapacity()
    {
        while (_entries.Count > options.Value.ModelCacheSize && _entries.Last is { } last)
        {
            _entries.RemoveLast();
            last.Value.Evicted = true;
            ServingMetrics.CacheEvictions.Add(1, ServingMetrics.Tags(last.Value.Name, last.Value.Version));
            DisposeIfIdle(last.Value);
        }
    }

    private void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.Leases--;
            DisposeIfIdle(entry);
        }
    }

    private static void DisposeIfIdle(Entry entry)
    {
        if (entry.Evicted && entry.Leases == 0 && entry.Model.IsValueCreated)
        {
            entry.Model.Value.Dispose();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var entry in _entries.Where(e => e.Model.IsValueCreated))
            {
                entry.Model.Value.Dispose();
            }

            _entries.Clear();
        }
    }

    private sealed class Entry(string name, int version, Lazy<ScoringModel> model)
    {
        public string Name { get; } = name;
        public int Version { get; } = version;
        public Lazy<ScoringModel> Model { get; } = model;
        public int Leases { get; set; }
        public bool Evicted { get; set; }
    }
}

/// <summary>A loaned session; dispose to return it.</summary>
public sealed class ModelLease(ScoringModel model, Action release) : IDisposable
{
    private int _released;

    public ScoringModel Model { get; } = model;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            release();
        }
    }
}
