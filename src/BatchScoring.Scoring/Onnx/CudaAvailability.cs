using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Onnx;

/// <summary>
/// Whether ONNX Runtime's CUDA execution provider can work in this process, checked before asking for it:
/// asked without a GPU or without the CUDA libraries, ONNX Runtime prints a native error on every model load.
/// </summary>
internal static class CudaAvailability
{
    /// <summary>
    /// The NEEDED entries of libonnxruntime_providers_cuda.so in Microsoft.ML.OnnxRuntime.Gpu 1.32.0 (`readelf -d`),
    /// and cuDNN, which it opens at run time: CUDA 13 and cuDNN 9. Check again when OnnxRuntimeVersion changes
    /// (tests/scripts/gpu-check.sh prints them); deploy/docker/Dockerfile.gpu's base image provides them.
    /// </summary>
    internal static readonly string[] LinuxLibraries =
        ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"];

    private const int CudaSuccess = 0;

    private static readonly Lazy<(int Devices, string? Problem, bool Expected)> Machine = new(ProbeMachine);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int CuInit(uint flags);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int CuDeviceGetCount(out int count);

    /// <summary>Null when CUDA device <paramref name="deviceId"/> can be asked for; otherwise why not, and whether that is a normal set-up.</summary>
    public static (string Reason, bool Expected)? WhyNot(int deviceId)
    {
        string[] providers;
        try
        {
            providers = OrtEnv.Instance().GetAvailableProviders();
        }
        catch (OnnxRuntimeException ex)
        {
            return ($"ONNX Runtime could not list its execution providers: {ex.Message}", false);
        }

        if (!providers.Contains(ScoringModel.CudaProvider, StringComparer.Ordinal))
        {
            return ("no CUDA execution provider in this ONNX Runtime build, the CPU package; the GPU build is -p:OnnxRuntimeGpu=true", true);
        }

        if (!OperatingSystem.IsLinux())
        {
            // Only the Linux libraries are known here; elsewhere ONNX Runtime decides.
            return null;
        }

        var (devices, problem, expected) = Machine.Value;
        if (problem is not null)
        {
            return (problem, expected);
        }

        return deviceId < devices ? null : ($"CUDA device {deviceId} was asked for, but {devices} device(s) are visible", false);
    }

    /// <summary>Device count and, on a machine without a usable GPU, why not: the driver first, then the CUDA libraries.</summary>
    private static (int Devices, string? Problem, bool Expected) ProbeMachine()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver))
        {
            return (0, "no NVIDIA driver: libcuda.so.1 cannot be loaded", true);
        }

        try
        {
            var init = Marshal.GetDelegateForFunctionPointer<CuInit>(NativeLibrary.GetExport(driver, "cuInit"));
            var count = Marshal.GetDelegateForFunctionPointer<CuDeviceGetCount>(NativeLibrary.GetExport(driver, "cuDeviceGetCount"));
            var status = init(0);
            var devices = 0;
            if (status != CudaSuccess || (status = count(out devices)) != CudaSuccess || devices == 0)
            {
                return (0, $"no CUDA device visible: CUDA driver status {status}", true);
            }

            var missing = LinuxLibraries.Where(library => !CanLoad(library)).ToArray();
            return missing.Length == 0
                ? (devices, null, true)
                : (devices, $"{devices} CUDA device(s), but {string.Join(", ", missing)} cannot be loaded: the GPU build needs CUDA 13 and cuDNN 9", false);
        }
        catch (EntryPointNotFoundException ex)
        {
            return (0, $"the NVIDIA driver library is unusable: {ex.Message}", false);
        }

        // The driver stays loaded: after cuInit it runs threads of its own, and ONNX Runtime uses it next.
    }

    private static bool CanLoad(string library)
    {
        if (!NativeLibrary.TryLoad(library, out var handle))
        {
            return false;
        }

        NativeLibrary.Free(handle);
        return true;
    }
}
