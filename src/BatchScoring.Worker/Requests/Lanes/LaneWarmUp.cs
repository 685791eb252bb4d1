using System.Diagnostics;
using BatchScoring.Application;
using BatchScoring.Scoring.Data;
using BatchScoring.Worker.Requests.Batching;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Worker.Requests.Lanes;

/// <summary>
/// Runs a small batch of neutral rows (zeros, empty strings) through a version before its lane serves: the first
/// inference call pays for ONNX Runtime's allocations and kernel set-up, which a request should not. Nothing is written.
/// </summary>
internal static class LaneWarmUp
{
    public const int Rows = 8;

    public static void Run(RequestLanePlan plan, ModelCache models, ILogger logger, CancellationToken cancellationToken)
    {
        var version = plan.Version;
        var watch = Stopwatch.StartNew();
        try
        {
            using (var lease = models.Acquire(version))
            {
                lease.Model.Score(Batch(plan), plan.Mapping, new Scoring.Onnx.ScoreOptions(), cancellationToken);
            }

            ServingMetrics.WarmUps.Add(1, ServingMetrics.Tags(version.ModelName, version.Version));
            logger.WarmedUp(version.ModelName, version.Version, Rows, watch.ElapsedMilliseconds);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A model that fails on neutral rows may still score real ones: the lane serves, the failure is logged.
            logger.WarmUpFailed(version.ModelName, version.Version, ex.Message);
        }
    }

    private static ColumnBatch Batch(RequestLanePlan plan)
    {
        var columns = new List<BatchColumn>(plan.Features.Count + 1)
        {
            new(PendingRequest.KeyColumn, ColumnKind.String, Enumerable.Range(0, Rows).Select(i => "warm-up-" + i).ToArray()),
        };
        foreach (var feature in plan.Features)
        {
            Array values = feature.Kind switch
            {
                ColumnKind.Float64 => new double[Rows],
                ColumnKind.Int32 => new int[Rows],
                ColumnKind.Int64 => new long[Rows],
                ColumnKind.Boolean => new bool[Rows],
                ColumnKind.String => Enumerable.Repeat("", Rows).ToArray(),
                ColumnKind.Timestamp => Enumerable.Repeat(DateTime.UnixEpoch, Rows).ToArray(),
                ColumnKind.Float32List => Enumerable.Range(0, Rows).Select(_ => new float[Math.Max(1, feature.ListLength)]).ToArray(),
                _ => new float[Rows],
            };
            columns.Add(new BatchColumn(feature.Name, feature.Kind, values));
        }

        return new ColumnBatch(columns);
    }
}
