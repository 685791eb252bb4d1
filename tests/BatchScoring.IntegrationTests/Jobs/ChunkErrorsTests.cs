using BatchScoring.Application;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>How chunk errors are classified; a full disk is a real ENOSPC from the kernel (/dev/full), not a made-up HResult.</summary>
public sealed class ChunkErrorsTests
{
    [Fact]
    public void A_full_disk_is_permanent_and_says_so()
    {
        Assert.SkipUnless(File.Exists("/dev/full"), "needs /dev/full (Linux)");
        var full = Assert.ThrowsAny<IOException>(() =>
        {
            using var stream = new FileStream("/dev/full", FileMode.Open, FileAccess.Write);
            stream.Write(new byte[4096]);
            stream.Flush();
        });

        Assert.True(ChunkErrors.IsDiskFull(full), $"HResult {full.HResult}: {full.Message}");
        Assert.True(ChunkErrors.IsPermanent(full));
        Assert.StartsWith("disk full", ChunkErrors.Describe(full), StringComparison.Ordinal);
    }

    [Fact]
    public void Other_io_errors_stay_transient()
    {
        var missing = Assert.ThrowsAny<IOException>(() => File.ReadAllBytes("/proc/self/does-not-exist"));
        Assert.False(ChunkErrors.IsDiskFull(missing));
        Assert.False(ChunkErrors.IsPermanent(new IOException("connection reset")));
    }
}
