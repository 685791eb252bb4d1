using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using BatchScoring.Application;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// The reconciler's measurements made in the creating test's own async flow: other tests run passes on the same static
/// instruments at the same time, so a process-wide sum would count theirs too.
/// </summary>
internal sealed class ReconcilerMeasurements : IDisposable
{
    private static readonly AsyncLocal<ReconcilerMeasurements?> s_current = new();

    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(string Instrument, string Label, long Value)> _seen = new();

    /// <summary>Starts listening; the measurements of passes awaited from here on, in this flow, are kept.</summary>
    public ReconcilerMeasurements()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ScoringMetrics.MeterName && instrument.Name.StartsWith("batchscoring_reconciler_", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (s_current.Value == this && tags.Length == 1)
            {
                _seen.Enqueue((instrument.Name, tags[0].Value as string ?? "", value));
            }
        });
        _listener.Start();
        s_current.Value = this;
    }

    /// <summary>Passes counted with this outcome (<c>completed</c>, <c>failed</c>).</summary>
    public long Passes(string outcome) => Sum("batchscoring_reconciler_passes_total", outcome);

    /// <summary>What the passes did, for one action (<c>ends_announced</c>, <c>chunks_resent</c>, …).</summary>
    public long Actions(string action) => Sum("batchscoring_reconciler_actions_total", action);

    public void Dispose() => _listener.Dispose();

    private long Sum(string instrument, string label) => _seen.Where(s => s.Instrument == instrument && s.Label == label).Sum(s => s.Value);
}
