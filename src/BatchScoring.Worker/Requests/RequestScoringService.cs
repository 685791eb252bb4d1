using System.Collections.Concurrent;
using System.Diagnostics;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Worker.Requests.Lanes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.Worker.Requests;

/// <summary>
/// A request that cannot be scored as sent (schema violation, unknown model, features that do not fit the model).
/// The consumer answers it with outcome <c>rejected</c>, then throws this so that MassTransit moves the message to
/// <c>score-requests_error</c> (no retry) with the reason in its fault headers.
/// </summary>
public sealed class ScoreRequestRejectedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Request mode: validates a <see cref="ScoreRequest"/>, resolves its model (cached briefly), queues its rows in
/// the model version's batcher (one per version; versions and models never share a batch) and completes once
/// the rows are written. Singleton; host-free apart from PostgreSQL.
/// </summary>
public sealed class RequestScoringService : IAsyncDisposable
{
    private readonly JobStore _store;
    private readonly NpgsqlDataSource _dataSource;
    private readonly ModelCache _models;
    private readonly RequestBatchingOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly DriftSampleRecorder _driftSamples;
    private readonly ConcurrentDictionary<(string Name, string? Version), Resolution> _resolutions = new();
    private readonly ConcurrentDictionary<(string Name, int Version), Lazy<Task<RequestLane>>> _lanes = new();

    public RequestScoringService(
        JobStore store, NpgsqlDataSource dataSource, ModelCache models, DriftSampleRecorder driftSamples, IOptions<RequestBatchingOptions> options, ILogger<RequestScoringService> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _driftSamples = driftSamples;
        _dataSource = dataSource;
        _models = models;
        _options = options.Value;
        _logger = logger;
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
        var problem = CheckShape(request);
        if (problem is not null)
        {
            return Rejected(request, new ScoredModel(modelName, null), problem);
        }

        var version = await ResolveAsync(modelName, request.Model!.Version, cancellationToken);
        if (version is null)
        {
            return Rejected(request, new ScoredModel(modelName, null), ModelRegistry.NotFound(modelName, request.Model.Version));
        }

        RequestLane lane;
        try
        {
            lane = await GetLaneAsync(version, cancellationToken);
        }
        catch (ScoreRequestRejectedException ex)
        {
            return Rejected(request, new ScoredModel(version.ModelName, version.Version), ex.Message);
        }

        var (pending, mismatch) = lane.Prepare(request);
        if (pending is null)
        {
            return Rejected(request, lane.Model, mismatch!);
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
        _logger.LogInformation(
            "Request {RequestId} redelivered: {Committed} rows were committed by an earlier delivery, {Remaining} left to score",
            request.RequestId, request.Rows.Count - remaining.Count, remaining.Count);
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

        var restScores = new Dictionary<string, RowScore>(StringComparer.Ordinal);
        var restFailures = new Dictionary<string, RowFailureReport>(StringComparer.Ordinal);
        foreach (var score in rest?.Scores ?? [])
        {
            restScores.TryAdd(score.Key, score);
        }

        foreach (var failure in rest?.Failures ?? [])
        {
            restFailures.TryAdd(failure.Key ?? "", failure);
        }

        var scores = new List<RowScore>(request.Rows.Count);
        var failures = new List<RowFailureReport>();
        foreach (var row in request.Rows)
        {
            if (committed.Scored.TryGetValue(row.Key, out var outputs))
            {
                scores.Add(new RowScore(row.Key, outputs));
            }
            else if (committed.Failed.TryGetValue(row.Key, out var failed))
            {
                failures.Add(new RowFailureReport(row.Key, failed.Column, failed.Reason));
            }
            else if (restScores.TryGetValue(row.Key, out var score))
            {
                scores.Add(score);
            }
            else if (restFailures.TryGetValue(row.Key, out var failure))
            {
                failures.Add(failure);
            }
        }

        return lane.Answer(request, failures.Count == 0 ? ScoreRequestOutcome.Scored : ScoreRequestOutcome.PartiallyScored, null) with
        {
            Scores = scores,
            Failures = failures,
        };
    }

    /// <summary>Backlog rows per model version (for diagnostics and tests).</summary>
    public IReadOnlyDictionary<string, long> Backlog() => _lanes
        .Where(l => l.Value.IsValueCreated && l.Value.Value.IsCompletedSuccessfully)
        .ToDictionary(l => $"{l.Key.Name}@{l.Key.Version}", l => l.Value.Value.Result.BacklogRows);

    private string? CheckShape(ScoreRequest request)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(request.RequestId))
        {
            problems.Add("requestId is required.");
        }
        else if (request.RequestId.Length > 200)
        {
            problems.Add($"requestId has {request.RequestId.Length} characters (at most 200).");
        }

        if (request.Model is null || string.IsNullOrWhiteSpace(request.Model.Name))
        {
            problems.Add("model.name is required.");
        }

        if (request.Rows is null || request.Rows.Count == 0)
        {
            problems.Add("rows must have at least one row.");
        }
        else if (request.Rows.Count > _options.MaxRequestRows)
        {
            problems.Add($"rows has {request.Rows.Count} rows (at most {_options.MaxRequestRows} per request).");
        }
        else
        {
            for (var i = 0; i < request.Rows.Count && problems.Count < 5; i++)
            {
                var row = request.Rows[i];
                if (row is null)
                {
                    problems.Add($"rows[{i}] is null.");
                }
                else if (row.Key is null)
                {
                    problems.Add($"rows[{i}].key is required.");
                }
                else if (row.Features is null)
                {
                    problems.Add($"rows[{i}].features is required.");
                }
            }
        }

        if (request.ReplyTo is { Length: > 255 })
        {
            problems.Add("replyTo is longer than 255 characters.");
        }

        return problems.Count == 0 ? null : "Invalid request: " + string.Join(" ", problems);
    }

    private static ScoreRequestCompleted Rejected(ScoreRequest request, ScoredModel model, string error) => new()
    {
        RequestId = request.RequestId ?? "",
        CorrelationId = request.CorrelationId,
        Model = model,
        Outcome = ScoreRequestOutcome.Rejected,
        Error = error,
        CompletedAt = DateTimeOffset.UtcNow,
    };

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

    private Task<RequestLane> GetLaneAsync(ModelVersionEntity version, CancellationToken cancellationToken)
    {
        var key = (version.ModelName, version.Version);
        var lazy = _lanes.GetOrAdd(key, _ => new Lazy<Task<RequestLane>>(() => CreateLaneAsync(version)));
        var task = lazy.Value;
        if (task.IsFaulted || task.IsCanceled)
        {
            // Not cached: the next request tries again (a model file may have become readable, a table fixed).
            _lanes.TryRemove(new KeyValuePair<(string, int), Lazy<Task<RequestLane>>>(key, lazy));
        }

        return task.WaitAsync(cancellationToken);
    }

    private async Task<RequestLane> CreateLaneAsync(ModelVersionEntity version)
    {
        var lane = await RequestLane.CreateAsync(version, _models, _dataSource, _driftSamples, _options, _logger, _stopping.Token);
        lane.Start(_stopping.Token);
        _logger.LogInformation(
            "Request mode: model {Model} v{Version} batches up to {Rows} rows / {Delay} ms into {Table} (features: {Features})",
            version.ModelName, version.Version, _options.MaxBatchRows, _options.MaxQueueDelayMs, lane.Table.QualifiedName, string.Join(", ", lane.Features.Select(f => f.Name)));
        return lane;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        foreach (var lazy in _lanes.Values.Where(l => l.IsValueCreated))
        {
            try
            {
                var lane = await lazy.Value;
                await lane.Completion;
            }
            catch (Exception ex) when (ex is OperationCanceledException or ScoreRequestRejectedException or NpgsqlException)
            {
                // lane never started or stopped
            }
        }

        _stopping.Dispose();
    }

    private sealed record Resolution(Task<ModelVersionEntity?> Task, long ExpiresAt);
}
