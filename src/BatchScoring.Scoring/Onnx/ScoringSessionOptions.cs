using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Onnx;

/// <summary>How to build the ONNX Runtime session for a model.</summary>
public sealed class ScoringSessionOptions
{
    /// <summary>Threads per Run call; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; set; }

    public GraphOptimizationLevel GraphOptimizationLevel { get; set; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Use the CUDA execution provider when this ONNX Runtime build has it; otherwise CPU.</summary>
    public bool PreferCuda { get; set; } = true;

    public int CudaDeviceId { get; set; }

    /// <summary>ONNX Runtime's CPU memory arena: faster reallocation, but it keeps its high-water mark for the life of the session.</summary>
    public bool EnableCpuMemArena { get; set; } = true;

    /// <summary>
    /// On CPU, the most rows per ONNX Runtime call: a larger batch is run in slices of this many rows (0, the default:
    /// the whole batch at once). For wide models a slice's activations stay in the CPU's caches where a whole batch's
    /// do not (a 1,024-wide layer: 8 MiB for 2,048 rows against 32 MiB for 8,192); raw ONNX Runtime ran ~10 % faster,
    /// whole jobs of such a model only ~2 % (within the noise) and narrow models slower (docs/benchmarks.md). The batch
    /// stays one unit for everything else (validation, COPY). A CUDA session always runs the whole batch.
    /// </summary>
    public int CpuRowsPerRun { get; set; }
}
