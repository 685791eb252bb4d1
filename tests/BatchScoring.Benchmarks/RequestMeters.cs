using System.Diagnostics.Metrics;
using BatchScoring.Application;
using BatchScoring.Contracts;

namespace BatchScoring.Benchmarks;

/// <summary>
/// The request worker's counts, read in this process (the request workloads host the worker here): requests finished
/// (all outcomes, and scored) and rows per inference call of one model.
/// </summary>
internal sealed class RequestMeters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _model;
    private long _finished;
    private long _scored;
    private long _batchCalls;
    private double _batchRows;
    private readonly Lock _batchLock = new();

    public RequestMeters(string model)
    {
        _model = model;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ScoringMetrics.MeterName && (instrument == ScoringMetrics.RequestsFinished || instrument == ScoringMetrics.BatchRows))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>(OnFinished);
        _listener.SetMeasurementEventCallback<double>(OnBatch);
        _listener.Start();
    }

    public (double All, double Scored) Finished => (Interlocked.Read(ref _finished), Interlocked.Read(ref _scored));

    public (double Sum, double Count) Batches
    {
        get
        {
            lock (_batchLock)
            {
                return (_batchRows, _batchCalls);
            }
        }
    }

    private void OnFinished(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        Interlocked.Add(ref _finished, value);
        if (Tag(tags, "outcome") == ScoreRequestOutcome.Scored)
        {
            Interlocked.Add(ref _scored, value);
        }
    }

    private void OnBatch(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (Tag(tags, "model") == _model && Tag(tags, "mode") == "request")
        {
            lock (_batchLock)
            {
                _batchRows += value;
                _batchCalls++;
            }
        }
    }

    private static string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == key)
            {
                return tag.Value as string;
            }
        }

        return null;
    }

    public void Dispose() => _listener.Dispose();
}
