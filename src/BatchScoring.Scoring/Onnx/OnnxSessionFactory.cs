using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Onnx;

/// <summary>An ONNX Runtime session, the execution provider it runs on and why that one.</summary>
internal sealed record CreatedSession(InferenceSession Session, string Provider, string Reason, bool Expected);

/// <summary>Builds the session for a model: CUDA when asked for and usable, otherwise CPU.</summary>
internal static class OnnxSessionFactory
{
    public static CreatedSession Create(byte[] bytes, ScoringSessionOptions options, string source, string logId)
    {
        (string Reason, bool Expected)? notCuda = options.PreferCuda
            ? CudaAvailability.WhyNot(options.CudaDeviceId)
            : ("CUDA not asked for: PreferCuda is false", true);
        if (notCuda is null)
        {
            try
            {
                using var cudaOptions = BuildSessionOptions(options, logId);
                cudaOptions.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                return new CreatedSession(new InferenceSession(bytes, cudaOptions), ScoringModel.CudaProvider, $"CUDA device {options.CudaDeviceId}", true);
            }
            catch (Exception ex) when (ex is OnnxRuntimeException or EntryPointNotFoundException)
            {
                notCuda = ($"the CUDA session failed: {ex.Message}", false);
            }
        }

        var (reason, expected) = notCuda.Value;
        try
        {
            using var cpuOptions = BuildSessionOptions(options, logId);
            return new CreatedSession(new InferenceSession(bytes, cpuOptions), ScoringModel.CpuProvider, reason, expected);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelLoadException($"Model file '{source}' is not a valid ONNX model or cannot be loaded by ONNX Runtime: {ex.Message}", ex);
        }
    }

    private static SessionOptions BuildSessionOptions(ScoringSessionOptions options, string logId)
    {
        var sessionOptions = new SessionOptions();
        try
        {
            sessionOptions.LogId = logId;
            sessionOptions.GraphOptimizationLevel = options.GraphOptimizationLevel;
            sessionOptions.IntraOpNumThreads = Math.Max(0, options.IntraOpThreads);
            sessionOptions.EnableCpuMemArena = options.EnableCpuMemArena;
            sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            return sessionOptions;
        }
        catch
        {
            sessionOptions.Dispose();
            throw;
        }
    }
}
