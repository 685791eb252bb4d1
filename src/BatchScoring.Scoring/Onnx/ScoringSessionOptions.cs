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
}
