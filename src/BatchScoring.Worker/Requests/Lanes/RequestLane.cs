using System.Diagnostics;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Batching;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Worker.Requests.Answers;
using BatchScoring.Worker.Requests.Batching;
using BatchScoring.Worker.Requests.Intake;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Worker.Requests.Lanes;

/// <summary>
/// Scheduling for one model version's requests: admits them against the backlog limit, answers those whose deadline
/// passed while queued, runs one inference call per batch the batcher forms, and writes a batch to PostgreSQL while
/// the next is scored (up to MaxConcurrentWrites). Versions and models never share a lane, so never a batch.
/// </summary>
internal sealed class RequestLane : IAsyncDisposable
{
    private readonly RequestLanePlan _plan;
    private readonly RequestRowConverter _rows;
    private readonly BatchWriter _writer;
    private readonly ModelCache _models;
    private readonly DriftSampleRecorder _driftSamples;
    private readonly RequestBatchingOptions _options;
    private readonly ILogger _logger;
    private readonly DynamicBatcher<PendingRequest> _batcher;
    private readonly SemaphoreSlim _writes;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ScoreOptions _scoreOptions = new();
    private long _backlogRows;
    private Task _loop = Task.CompletedTask;
    private int _disposed;

    private RequestLane(
        RequestLanePlan plan, ModelCache models, NpgsqlDataSource dataSource, DriftSampleRecorder driftSamples, RequestBatchingOptions options, ILogger logger)
    {
        _plan = plan;
        Model = new ScoredModel(plan.Version.ModelName, plan.Version.Version);
        _rows = new RequestRowConverter(plan.Features, Model);
        _writer = new BatchWriter(plan.Version, plan.Table, dataSource);
        _models = models;
        _driftSamples = driftSamples;
        _options = options;
        _logger = logger;
        _writes = new SemaphoreSlim(options.MaxConcurrentWrites, options.MaxConcurrentWrites);
        _batcher = new DynamicBatcher<PendingRequest>(options.MaxBatchRows, options.MaxQueueDelay, p => p.RowCount, AdmitAtDequeue, RunBatchAsync);
    }

    public IReadOnlyList<RequestFeature> Features => _plan.Features;

    public ResultTable Table => _plan.Table;

    public ScoredModel Model { get; }

    public ModelVersionEntity Version => _plan.Version;

    /// <summary>Rows admitted and not yet finished (queued, being scored or being written).</summary>
    public long BacklogRows => Interlocked.Read(ref _backlogRows);

    /// <summary>Plans the lane (see <see cref="RequestLanePlan.CreateAsync"/>) and starts its batching loop.</summary>
    public static async Task<RequestLane> StartAsync(
        ModelVersionEntity version, ModelCache models, NpgsqlDataSource dataSource, DriftSampleRecorder driftSamples, RequestBatchingOptions options, ILogger logger,
        CancellationToken cancellationToken)
    {
        var plan = await RequestLanePlan.CreateAsync(version, models, dataSource, logger, cancellationToken);
        LaneWarmUp.Run(plan, models, logger, cancellationToken);
        var lane = new RequestLane(plan, models, dataSource, driftSamples, options, logger);
        var stopping = lane._stopping.Token;
        lane._loop = Task.Run(async () =>
        {
            try
            {
                await lane._batcher.RunAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // shutting down
            }
        }, CancellationToken.None);
        return lane;
    }

    /// <inheritdoc cref="RequestRowConverter.Prepare"/>
    public (PendingRequest? Request, string? Problem) Prepare(ScoreRequest request) => _rows.Prepare(request);

    /// <summary>Queues the request unless the backlog is over its limit (a request is always admitted into an empty lane).</summary>
    public bool TryAdmit(PendingRequest request)
    {
        var after = Interlocked.Add(ref _backlogRows, request.RowCount);
        if (after - request.RowCount > 0 && after > _options.MaxBacklogRows)
        {
            Interlocked.Add(ref _backlogRows, -request.RowCount);
            return false;
        }

        if (_batcher.TryEnqueue(request))
        {
            return true;
        }

        Interlocked.Add(ref _backlogRows, -request.RowCount);
        return false;
    }

    public ScoreRequestCompleted Answer(ScoreRequest request, string outcome, string? error) => RequestAnswers.Create(request, Model, outcome, error);

    private bool AdmitAtDequeue(PendingRequest request)
    {
        if (request.Request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
        {
            Finish(request);
            request.Completion.TrySetResult(Answer(
                request.Request, ScoreRequestOutcome.Timeout, $"The deadline {deadline:O} passed before the request was scored; nothing was written."));
            return false;
        }

        return true;
    }

    private void Finish(PendingRequest request)
    {
        if (request.TryFinish())
        {
            Interlocked.Add(ref _backlogRows, -request.RowCount);
        }
    }

    private async ValueTask RunBatchAsync(FormedBatch<PendingRequest> batch, CancellationToken cancellationToken)
    {
        var slices = batch.Slices;
        try
        {
            var input = BatchInput.Gather(slices, batch.Rows, _rows);
            ScoreResult result;
            var version = _plan.Version;
            var watch = Stopwatch.StartNew();
            using (var lease = _models.Acquire(version))
            {
                result = lease.Model.Score(input, _plan.Mapping, _scoreOptions, cancellationToken);
            }

            var model = version.ModelName;
            ScoringMetrics.InferenceSeconds.Record(watch.Elapsed.TotalSeconds, ScoringMetrics.ModelTags(model, "request"));
            ScoringMetrics.BatchRows.Record(batch.Rows, ScoringMetrics.ModelTags(model, "request"));
            if (_driftSamples.RequestSampleDue(model, version.Version))
            {
                _driftSamples.Record(model, version.Version, DriftSampleRecorder.RequestSource, input, _plan.Mapping, result);
            }

            await _writes.WaitAsync(cancellationToken);
            _ = PersistAsync(slices, input, result, cancellationToken);
        }
        catch (Exception ex)
        {
            FailAll(slices, ex);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
        }
    }

    private async Task PersistAsync(IReadOnlyList<BatchSlice<PendingRequest>> slices, ColumnBatch input, ScoreResult result, CancellationToken cancellationToken)
    {
        try
        {
            await _writer.WriteAsync(slices, input, result, cancellationToken);
            foreach (var (request, _, count) in slices)
            {
                if (request.RowsDone(count))
                {
                    Finish(request);
                    request.Completion.TrySetResult(request.BuildResult(Model));
                }
            }
        }
        catch (Exception ex)
        {
            _logger.BatchWriteFailed(ex, _plan.Version.ModelName, _plan.Version.Version, slices.Count);
            FailAll(slices, ex);
        }
        finally
        {
            _writes.Release();
        }
    }

    private void FailAll(IReadOnlyList<BatchSlice<PendingRequest>> slices, Exception ex)
    {
        foreach (var slice in slices)
        {
            Finish(slice.Item);
            slice.Item.Completion.TrySetException(ex);
        }
    }

    /// <summary>Stops the batching loop, then waits for the writes in flight (cancelled with it) before releasing their slots.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        await _loop;
        for (var i = 0; i < _options.MaxConcurrentWrites; i++)
        {
            await _writes.WaitAsync(CancellationToken.None);
        }

        _writes.Dispose();
        _stopping.Dispose();
    }
}
