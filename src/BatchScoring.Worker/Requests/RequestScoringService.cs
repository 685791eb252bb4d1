using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Worker.Requests.Answers;
using BatchScoring.Worker.Requests.Batching;
using BatchScoring.Worker.Requests.Canary;
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
    private readonly CanaryStore _canaries;
    private readonly NpgsqlDataSource _dataSource;
    private readonly RequestBatchingOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<(string Name, string? Version), Resolution> _resolutions = new();
    private readonly ModelCache _models;
    private long _aliasMovesHandled;
    private readonly RequestLanes _lanes;

    public RequestScoringService(
        ModelStore store,
        CanaryStore canaries,
        NpgsqlDataSource dataSource,
        ModelCache models,
        DriftSampleRecorder driftSamples,
        IOptions<RequestBatchingOptions> options,
        ILogger<RequestScoringService> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _canaries = canaries;
        _models = models;
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

        var route = await ResolveAsync(modelName, request.Model!.Version, cancellationToken);
        if (route is null)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(modelName, null), ModelRegistry.NotFound(modelName, request.Model.Version));
        }

        if (new[] { route.Main, route.Canary }.FirstOrDefault(v => v?.ArchivedAt is not null) is { } archived)
        {
            return RequestAnswers.Rejected(request, new ScoredModel(archived.ModelName, archived.Version), ModelRegistry.Archived(archived, "it does not score requests"));
        }

        if (route.Canary is not null)
        {
            return await ScoreSplitAsync(route, request, redelivered, cancellationToken);
        }

        var (lane, pending, rejected) = await PrepareAsync(route.Main, request, cancellationToken);
        return rejected ?? await RunAsync(lane!, pending!, request, redelivered, cancellationToken);
    }

    /// <summary>
    /// A request on an alias with a canary: its rows split by key between the two versions, each part scored in its
    /// version's lane, one answer. Both parts are checked before either is queued, so a part the request cannot feed
    /// rejects the whole request with nothing written.
    /// </summary>
    private async Task<ScoreRequestCompleted> ScoreSplitAsync(ModelRoute route, ScoreRequest request, bool redelivered, CancellationToken cancellationToken)
    {
        var canary = route.Canary!;
        var model = new ScoredModel(route.Main.ModelName, route.Main.Version) { CanaryVersion = canary.Version, CanaryPercent = route.CanaryPercent };
        var (mainRows, canaryRows) = CanaryRouter.Split(request, route.Main.ModelName, route.CanaryPercent);
        var prepared = new List<(RequestLane Lane, PendingRequest Pending, ScoreRequest Part)>(2);
        foreach (var (version, rows) in new[] { (route.Main, mainRows), (canary, canaryRows) })
        {
            if (rows.Count == 0)
            {
                continue;
            }

            var part = request with { Rows = rows };
            var (lane, pending, rejected) = await PrepareAsync(version, part, cancellationToken);
            if (rejected is not null)
            {
                return rejected with { Model = model };
            }

            prepared.Add((lane!, pending!, part));
        }

        var answers = await Task.WhenAll(prepared.Select(p => RunAsync(p.Lane, p.Pending, p.Part, redelivered, cancellationToken)));
        return CanaryAnswer.Merge(request, model, prepared.Select((p, i) => new CanaryPart(p.Lane.Model.Version!.Value, p.Part.Rows, answers[i])).ToList());
    }

    /// <summary>The version's lane (started and warmed on first use) and the request's rows converted for it; or the rejection.</summary>
    private async Task<(RequestLane? Lane, PendingRequest? Pending, ScoreRequestCompleted? Rejected)> PrepareAsync(
        ModelVersionEntity version, ScoreRequest request, CancellationToken cancellationToken)
    {
        RequestLane lane;
        try
        {
            lane = await _lanes.GetAsync(version, cancellationToken);
        }
        catch (ScoreRequestRejectedException ex)
        {
            return (null, null, RequestAnswers.Rejected(request, new ScoredModel(version.ModelName, version.Version), ex.Message));
        }

        var (pending, mismatch) = lane.Prepare(request);
        return pending is null ? (null, null, RequestAnswers.Rejected(request, lane.Model, mismatch!)) : (lane, pending, null);
    }

    /// <summary>Queues prepared rows in their lane and waits for them: deadline, backlog and redelivery checks first.</summary>
    private async Task<ScoreRequestCompleted> RunAsync(RequestLane lane, PendingRequest pending, ScoreRequest request, bool redelivered, CancellationToken cancellationToken)
    {
        var version = lane.Version;
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

    /// <summary>
    /// After an alias moved: starts (loads and warms) the lanes of the versions it now points at when this worker
    /// serves the model, then forgets the cached resolution, so requests switch to the new version once it is warm.
    /// </summary>
    public async Task WarmAliasAsync(RecordedAliasMove move, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(move);
        if (_lanes.Serves(move.Model))
        {
            foreach (var number in new[] { move.Version, move.CanaryVersion })
            {
                if (number is { } v && await _store.GetModelVersionAsync(move.Model, v, cancellationToken) is { } version)
                {
                    try
                    {
                        await _lanes.GetAsync(version, cancellationToken);
                    }
                    catch (ScoreRequestRejectedException ex)
                    {
                        _logger.WarmUpFailed(move.Model, v, ex.Message);
                    }
                }
            }
        }

        _resolutions.TryRemove((move.Model, move.Alias), out _);
        Interlocked.Increment(ref _aliasMovesHandled);
    }

    /// <summary>Alias moves this worker has acted on (warmed what they point at, forgot the old resolution).</summary>
    public long AliasMovesHandled => Interlocked.Read(ref _aliasMovesHandled);

    /// <summary>Whether the version is loaded in this worker's model cache (tests and the status of a warm-up).</summary>
    public bool IsWarm(string model, int version) => _lanes.IsStarted(model, version) && _models.IsLoaded(model, version);

    /// <summary>Name + version/alias → route (version, canary), reused for ModelResolutionCacheMs so the hot path does not query PostgreSQL.</summary>
    private async Task<ModelRoute?> ResolveAsync(string name, string? version, CancellationToken cancellationToken)
    {
        var key = (name, string.IsNullOrWhiteSpace(version) ? null : version.Trim());
        var now = Stopwatch.GetTimestamp();
        if (_resolutions.TryGetValue(key, out var cached) && now < cached.ExpiresAt && !cached.Task.IsFaulted && !cached.Task.IsCanceled)
        {
            return await cached.Task.WaitAsync(cancellationToken);
        }

        var fresh = new Resolution(
            LoadRouteAsync(name, key.Item2),
            now + (long)(_options.ModelResolutionCacheMs / 1000.0 * Stopwatch.Frequency));
        _resolutions[key] = fresh;
        return await fresh.Task.WaitAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => _lanes.DisposeAsync();

    private async Task<ModelRoute?> LoadRouteAsync(string name, string? reference)
    {
        if (await _store.ResolveModelAsync(name, reference, CancellationToken.None) is not { } main)
        {
            return null;
        }

        // Only an alias can carry a canary: numbers and "latest" name one version.
        if (reference is null || int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out _) || string.Equals(reference, "latest", StringComparison.OrdinalIgnoreCase)
            || await _canaries.GetCanaryAsync(name, reference, CancellationToken.None) is not { } canary
            || await _store.GetModelVersionAsync(name, canary.CanaryVersion, CancellationToken.None) is not { } canaryVersion)
        {
            return new ModelRoute(main, null, 0);
        }

        return new ModelRoute(main, canaryVersion, canary.Percent);
    }

    private sealed record Resolution(Task<ModelRoute?> Task, long ExpiresAt);
}
