using System.Diagnostics.Metrics;

namespace BatchScoring.Application;

/// <summary>
/// Model cache and per-version serving instruments on the <c>BatchScoring</c> meter (System.Diagnostics.Metrics).
/// Tagged by model and version: versions of a model are few, and a canary is only visible per version.
/// </summary>
public static class ServingMetrics
{
    private static readonly Meter s_meter = ScoringMetrics.Meter;

    public static readonly Counter<long> CacheHits = s_meter.CreateCounter<long>(
        "batchscoring_model_cache_hits", description: "Model sessions taken from the cache already loaded (or loading).");

    public static readonly Counter<long> CacheMisses = s_meter.CreateCounter<long>(
        "batchscoring_model_cache_misses", description: "Model sessions not in the cache: each one is a load.");

    public static readonly Counter<long> CacheEvictions = s_meter.CreateCounter<long>(
        "batchscoring_model_cache_evictions", description: "Model sessions dropped from the cache (least recently used, beyond BatchScoring:ModelCacheSize).");

    public static readonly Histogram<double> LoadSeconds = s_meter.CreateHistogram<double>(
        "batchscoring_model_load_duration", unit: "s", description: "Time to load a model file into an ONNX Runtime session.");

    public static readonly Counter<long> WarmUps = s_meter.CreateCounter<long>(
        "batchscoring_model_warmups", description: "Model versions a worker loaded and ran a warm-up batch through before serving them.");

    public static readonly Counter<long> RequestRows = s_meter.CreateCounter<long>(
        "batchscoring_request_rows", description: "Score request rows by the model version they were sent to and outcome (scored, failed).");

    public static KeyValuePair<string, object?>[] Tags(string model, int version) => [new("model", model), new("version", version)];

    public static void RowsOfVersion(string model, int version, long scored, long failed)
    {
        if (scored > 0)
        {
            RequestRows.Add(scored, new("model", model), new("version", version), new("outcome", "scored"));
        }

        if (failed > 0)
        {
            RequestRows.Add(failed, new("model", model), new("version", version), new("outcome", "failed"));
        }
    }
}
