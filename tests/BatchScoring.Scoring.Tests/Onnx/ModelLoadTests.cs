using System.Security.Cryptography;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Scoring.Tests.Onnx;

public sealed class ModelLoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scoring-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Loads_from_file_with_hash_provider_and_log_line()
    {
        var model = SampleModels.Mlp([4, 1], seed: 1);
        var path = Path.Combine(_dir, "mlp.onnx");
        File.WriteAllBytes(path, model.Bytes);
        var logger = new ListLogger();
        var expected = Convert.ToHexStringLower(SHA256.HashData(model.Bytes));

        using var scoring = ScoringModel.Load(path, TestSupport.CpuOptions, logger, expected.ToUpperInvariant());

        Assert.Equal(expected, scoring.Sha256);
        Assert.Equal(path, scoring.Source);
        Assert.Equal(ScoringModel.CpuProvider, scoring.ExecutionProvider);
        var info = Assert.Single(logger.Entries, e => e.Level == LogLevel.Information);
        Assert.Contains("CPUExecutionProvider", info.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prefer_cuda_picks_the_provider_this_machine_has_and_says_why_in_one_line()
    {
        var model = SampleModels.Mlp([4, 1], seed: 1);
        var logger = new ListLogger();

        using var scoring = ScoringModel.Load(model.Bytes, new ScoringSessionOptions { PreferCuda = true, IntraOpThreads = 1 }, logger);

        var line = Assert.Single(logger.Entries, e => e.Message.StartsWith("Loaded model", StringComparison.Ordinal));
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Error);
        Assert.Contains($"on {scoring.ExecutionProvider} ({scoring.ExecutionProviderReason})", line.Message, StringComparison.Ordinal);
        if (!GpuBuild)
        {
            Assert.Equal(ScoringModel.CpuProvider, scoring.ExecutionProvider);
            Assert.Contains("no CUDA execution provider", scoring.ExecutionProviderReason, StringComparison.Ordinal);
            Assert.Equal(LogLevel.Information, line.Level);
        }
        else if (!GpuPresent)
        {
            // The GPU build on a machine without an NVIDIA GPU: CPU, said once, no native error.
            Assert.Equal(ScoringModel.CpuProvider, scoring.ExecutionProvider);
            Assert.Matches("no NVIDIA driver|no CUDA device", scoring.ExecutionProviderReason);
            Assert.Equal(LogLevel.Information, line.Level);
        }
        else
        {
            Assert.Equal(ScoringModel.CudaProvider, scoring.ExecutionProvider);
            Assert.Equal("CUDA device 0", scoring.ExecutionProviderReason);
        }
    }

    [Fact]
    public void Cuda_not_asked_for_gives_cpu_and_says_so()
    {
        var logger = new ListLogger();
        using var scoring = ScoringModel.Load(SampleModels.Mlp([4, 1], seed: 1).Bytes, TestSupport.CpuOptions, logger);

        Assert.Equal(ScoringModel.CpuProvider, scoring.ExecutionProvider);
        Assert.Contains("PreferCuda is false", Assert.Single(logger.Entries).Message, StringComparison.Ordinal);
    }

    /// <summary>Built with -p:OnnxRuntimeGpu=true: the CUDA provider library sits next to the tests.</summary>
    private static bool GpuBuild =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_cuda.so"))
        || File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so"));

    /// <summary>An NVIDIA GPU device node (/dev/nvidia0, …), as the driver or the container toolkit creates it.</summary>
    private static bool GpuPresent =>
        Directory.Exists("/dev") && Directory.EnumerateFiles("/dev", "nvidia*").Any(path => char.IsAsciiDigit(path[^1]));

    [Fact]
    public void Random_bytes_give_model_load_exception_naming_the_file()
    {
        var path = Path.Combine(_dir, "garbage.onnx");
        var bytes = new byte[4096];
        new Random(42).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(path, TestSupport.CpuOptions));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("not a valid ONNX model", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_model_gives_model_load_exception_naming_the_file()
    {
        var model = SampleModels.Mlp([64, 32, 1], seed: 1);
        var path = Path.Combine(_dir, "truncated.onnx");
        File.WriteAllBytes(path, model.Bytes[..(model.Bytes.Length / 2)]);

        var ex = Assert.Throws<ModelLoadException>(() => ScoringModel.Load(path, TestSupport.CpuOptions));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_and_missing_files_give_model_load_exception()
    {
        var empty = Path.Combine(_dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        Assert.Contains(empty, Assert.Throws<ModelLoadException>(() => ScoringModel.Load(empty, TestSupport.CpuOptions)).Message, StringComparison.Ordinal);

        var missing = Path.Combine(_dir, "missing.onnx");
        Assert.Contains(missing, Assert.Throws<ModelLoadException>(() => ScoringModel.Load(missing, TestSupport.CpuOptions)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Checksum_mismatch_names_file_and_both_hashes()
    {
        var model = SampleModels.Mlp([4, 1], seed: 1);
        var path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, model.Bytes);
        var actual = Convert.ToHexStringLower(SHA256.HashData(model.Bytes));
        var wrong = new string('a', 64);

        var ex = Assert.Throws<ModelIntegrityException>(() => ScoringModel.Load(path, TestSupport.CpuOptions, expectedSha256: wrong));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains(actual, ex.Message, StringComparison.Ordinal);
        Assert.Contains(wrong, ex.Message, StringComparison.Ordinal);
    }
}
