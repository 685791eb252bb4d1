using System.Collections.Concurrent;
using BatchScoring.Application.Challengers;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application;

/// <summary>
/// What a worker knows about a job to score its chunks (the job's stored plan resolved against its model: input
/// mapping, result table, part file schema), loaded once per job and retry per worker process and shared by its
/// chunks. A failed load is not kept, so the next chunk tries again (and fails with its own reason). Entries are dropped when the job ends here, and the least recently used
/// beyond <see cref="Capacity"/> (jobs that ended on another worker).
/// </summary>
public sealed class JobPlanCache
{
    public const int Capacity = 64;

    private readonly ConcurrentDictionary<(Guid JobId, int Retries), Entry> _entries = new();

    public async Task<JobPlan> GetAsync(Guid jobId, int retries, Func<Task<JobPlan>> build, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(build);
        var key = (jobId, retries);
        var entry = _entries.GetOrAdd(key, _ => new Entry(new Lazy<Task<JobPlan>>(build)));
        entry.LastUsed = Environment.TickCount64;
        if (_entries.Count > Capacity)
        {
            Trim();
        }

        try
        {
            return await entry.Plan.Value.WaitAsync(cancellationToken);
        }
        catch when (entry.Plan.Value.IsFaulted || entry.Plan.Value.IsCanceled)
        {
            _entries.TryRemove(new KeyValuePair<(Guid, int), Entry>(key, entry));
            throw;
        }
    }

    /// <summary>Drops every cached plan of the job (it ended, or was retried).</summary>
    public void Forget(Guid jobId)
    {
        foreach (var key in _entries.Keys.Where(k => k.JobId == jobId))
        {
            _entries.TryRemove(key, out _);
        }
    }

    public int Count => _entries.Count;

    private void Trim()
    {
        foreach (var (key, _) in _entries.OrderBy(e => e.Value.LastUsed).Take(Math.Max(0, _entries.Count - Capacity)).ToArray())
        {
            _entries.TryRemove(key, out _);
        }
    }

    private sealed class Entry(Lazy<Task<JobPlan>> plan)
    {
        public Lazy<Task<JobPlan>> Plan { get; } = plan;

        public long LastUsed { get; set; }
    }
}

/// <summary>What a worker needs to score any chunk of a job (see <see cref="JobPlanCache"/>): the job's stored plan, resolved against its model.</summary>
public sealed record JobPlan(
    JobEntity Job,
    ModelVersionEntity ModelVersion,
    DatasetFormat Format,
    ScoringPlan Plan,
    InputMapping Mapping,
    ResultTable? Table,
    IReadOnlyList<SourceColumn> PartColumns)
{
    private readonly ConcurrentDictionary<string, Lazy<Task>> _checkedFiles = new(StringComparer.Ordinal);

    /// <summary>The challenger scored in the same pass, resolved like the model; null for a job without one.</summary>
    public ChallengerJobPlan? Challenger { get; init; }

    public IReadOnlyList<SourceColumn> ReadColumns => Plan.Columns;

    public IReadOnlyList<string> CarriedColumns => Plan.Carried;

    /// <summary>Runs <paramref name="check"/> once per input file; a failed check is not kept, so the next chunk checks again.</summary>
    public async Task EnsureFileMatchesAsync(string path, Func<string, Task> check)
    {
        ArgumentNullException.ThrowIfNull(check);
        var entry = _checkedFiles.GetOrAdd(path, p => new Lazy<Task>(() => check(p)));
        try
        {
            await entry.Value;
        }
        catch
        {
            _checkedFiles.TryRemove(new KeyValuePair<string, Lazy<Task>>(path, entry));
            throw;
        }
    }
}
