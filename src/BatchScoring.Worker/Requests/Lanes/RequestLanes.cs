using System.Collections.Concurrent;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Data;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Worker.Requests.Lanes;

/// <summary>
/// One lane per model version, started by its first request. A lane that failed to start is not kept: the next
/// request tries again (a model file may have become readable, a table fixed).
/// </summary>
internal sealed class RequestLanes(
    ModelCache models, NpgsqlDataSource dataSource, DriftSampleRecorder driftSamples, RequestBatchingOptions options, ILogger logger) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<(string Name, int Version), Lazy<Task<RequestLane>>> _lanes = new();

    public Task<RequestLane> GetAsync(ModelVersionEntity version, CancellationToken cancellationToken)
    {
        var key = (version.ModelName, version.Version);
        var lazy = _lanes.GetOrAdd(key, _ => new Lazy<Task<RequestLane>>(() => StartAsync(version)));
        var task = lazy.Value;
        if (task.IsFaulted || task.IsCanceled)
        {
            _lanes.TryRemove(new KeyValuePair<(string, int), Lazy<Task<RequestLane>>>(key, lazy));
        }

        return task.WaitAsync(cancellationToken);
    }

    /// <summary>Whether a lane of any version of the model was started (this worker serves the model).</summary>
    public bool Serves(string model) => _lanes.Keys.Any(k => k.Name == model);

    /// <summary>Whether the version's lane has started (planned and warmed).</summary>
    public bool IsStarted(string model, int version) =>
        _lanes.TryGetValue((model, version), out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully;

    private async Task<RequestLane> StartAsync(ModelVersionEntity version)
    {
        var lane = await RequestLane.StartAsync(version, models, dataSource, driftSamples, options, logger, _stopping.Token);
        logger.LaneStarted(
            version.ModelName, version.Version, options.MaxBatchRows, options.MaxQueueDelayMs, lane.Table.QualifiedName, string.Join(", ", lane.Features.Select(f => f.Name)));
        return lane;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        var started = new List<RequestLane>();
        foreach (var lazy in _lanes.Values.Where(l => l.IsValueCreated))
        {
            try
            {
                started.Add(await lazy.Value);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ScoreRequestRejectedException or NpgsqlException)
            {
                // the lane never started
            }
        }

        await Task.WhenAll(started.Select(lane => lane.DisposeAsync().AsTask()));
        _stopping.Dispose();
    }
}
