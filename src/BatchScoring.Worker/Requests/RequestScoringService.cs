using System.Collections.Concurrent;
using System.Diagnostics;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Worker.Requests.Answers;
using BatchScoring.Worker.Requests.Intake;
using BatchScoring.Worker.Requests.Lanes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Worker.Requests;

/// <summary>
/// A model version request mode cannot score (its inputs cannot be fed from named features, or its outputs cannot
/// be stored): its requests are answered <c>rejected</c> and moved to <c>score-requests_error</c>.
/// </summary>
public sealed class ScoreRequestRejectedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Request mode: validates a <see cref="ScoreRequest"/>, resolves its model (cached briefly), queues its rows in
/// the model version's lane and completes once the rows are written. Knows nothing of the broker: the intake
/// (<see cref="RequestQueueListener"/>) calls it and sends what it returns.
/// </summary>
public sealed class RequestScoringService : IAsyncDisposable
{
    private readonly ModelStore _store;
    private readonly NpgsqlDataSource _dataSource;
    private readonly RequestBatchingOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<(string Name, string? Version), Resolution> _resolutions = new();
    private readonly RequestLanes _lanes;

    public RequestScoringService(
        ModelStore store, NpgsqlDataSource dataSource, ModelCache models, DriftSampleRecorder driftSamples, IOptions<RequestBatchingOptions> options, ILogger<RequestScoringService> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _dataSource = dataSource;
        _options = options.Value;
        _logger = logger;
        _lanes = new RequestLanes(models, dataSource, driftSamples, _options, logger);
    }

    public RequestBatchingOptions Options => _options;

    /// <summary>
    /// Scores a request and returns its answer once its results are written: outcome scored or partially_scored,
    /// or at once timeout (deadline passed), overloaded (backlog over its limit) or rejected (invalid request).
    /// Throws only for infrastructure failures (database, model file), which are worth a retry.
    /// A <paramref name="redelivered"/> request (the broker's flag: an earlier delivery was not acknowledged) is first
    /// looked up in the results: rows an earlier delivery committed are answered from there, not written again.
    /// </summary>
    public async Task<ScoreRequestCompleted> ScoreAsync(ScoreRequest request, CancellationToken cancellationToken, bool redelivered = false)
    {
        ArgumentNullException.ThrowIfNull(request);
        var modelName = request.Model?.Name ?? "";
        var problem = RequestShape.Check(request, _options.MaxRequestRows);
        if (problem is not null)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(modelName, null), problem);
        }

        var version = await ResolveAsync(modelName, request.Model!.Version, cancellationToken);
        if (version is null)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(modelName, null), ModelRegistry.NotFound(modelName, request.Model.Version));
        }

        if (version.ArchivedAt is not null)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(version.ModelName, version.Version), ModelRegistry.Archived(version, "it does not score requests"));
        }

        RequestLane lane;
        try
        {
            lane = await _lanes.GetAsync(version, cancellationToken);
        }
        catch (ScoreRequestRejectedException ex)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(version.ModelName, version.Version), ex.Message);
        }

        var (pending, mismatch) = lane.Prepare(request);
        if (pending is null)
        {
            return RequestAnswers.Rejected(request, lane.Model, mismatch!);
        }

        if (redelivered)
        {
            var committed = await lane.Table.ReadCommittedAsync(_dataSource, request.RequestId, request.Rows.Select(r => r.Key).Distinct().ToArray(), cancellationToken);
            if (committed.Scored.Count + committed.Failed.Count > 0)
            {
                return await CompleteRedeliveredAsync(lane, request, committed, cancellationToken);
            }
        }

        if (request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
        {
            return lane.Answer(request, ScoreRequestOutcome.Timeout, $"The deadline {deadline:O} had passed when the request was received; nothing was written.");
        }

        if (!lane.TryAdmit(pending))
        {
            return lane.Answer(
                request,
                ScoreRequestOutcome.Overloaded,
                $"Model '{version.ModelName}' v{version.Version} has {lane.BacklogRows} rows waiting (limit {_options.MaxBacklogRows}); retry later.");
        }

        return await pending.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// A redelivered request some of whose rows were committed by an earlier delivery (which died before its
    /// acknowledgement): those rows are answered from the results and failed-rows tables, only the others are scored.
    /// </summary>
    private async Task<ScoreRequestCompleted> CompleteRedeliveredAsync(RequestLane lane, ScoreRequest request, CommittedRequestRows committed, CancellationToken cancellationToken)
    {
        var remaining = request.Rows.Where(r => !committed.Scored.ContainsKey(r.Key) && !committed.Failed.ContainsKey(r.Key)).ToList();
        _logger.Redelivered(request.RequestId, request.Rows.Count - remaining.Count, remaining.Count);
        ScoreRequestCompleted? rest = null;
        if (remaining.Count > 0)
        {
            var (pending, _) = lane.Prepare(request with { Rows = remaining });
            if (!lane.TryAdmit(pending!))
            {
                return lane.Answer(request, ScoreRequestOutcome.Overloaded, $"Model '{lane.Model.Name}' v{lane.Model.Version} has {lane.BacklogRows} rows waiting; retry later.");
            }

            rest = await pending!.Completion.Task.WaitAsync(cancellationToken);
        }

        return RedeliveredAnswer.Merge(request, lane.Model, committed, rest);
    }

    /// <summary>Name + version/alias → model version, reused for ModelResolutionCacheMs so the hot path does not query PostgreSQL.</summary>
    private async Task<ModelVersionEntity?> ResolveAsync(string name, string? version, CancellationToken cancellationToken)
    {
        var key = (name, string.IsNullOrWhiteSpace(version) ? null : version.Trim());
        var now = Stopwatch.GetTimestamp();
        if (_resolutions.TryGetValue(key, out var cached) && now < cached.ExpiresAt && !cached.Task.IsFaulted && !cached.Task.IsCanceled)
        {
            return await cached.Task.WaitAsync(cancellationToken);
        }

        var fresh = new Resolution(
            _store.ResolveModelAsync(name, key.Item2, CancellationToken.None),
            now + (long)(_options.ModelResolutionCacheMs / 1000.0 * Stopwatch.Frequency));
        _resolutions[key] = fresh;
        return await fresh.Task.WaitAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => _lanes.DisposeAsync();

    private sealed record Resolution(Task<ModelVersionEntity?> Task, long ExpiresAt);
}
