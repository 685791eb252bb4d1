using System.Diagnostics;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>
/// A Parquet write that fails (here: a full disk, a 256 KiB tmpfs) leaves no hidden temporary file behind, neither
/// after the failure nor after a later successful write of the same part. Needs root to mount the tmpfs.
/// </summary>
public sealed class ParquetWriteFailureTests : IDisposable
{
    private static readonly SourceColumn[] Columns = [new("key", ColumnKind.Int64, false), new("score", ColumnKind.Float32, false)];
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-diskfull-").FullName;
    private bool _mounted;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", _dir);
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Disk_full_while_writing_a_part_leaves_no_temporary_file_even_after_a_successful_retry()
    {
        _mounted = Run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", _dir);
        Assert.SkipUnless(_mounted, "mounting a tmpfs needs root");
        var part = Path.Combine(_dir, "part-000003.parquet");
        // Leave 16 KiB free, less than the part needs and less than the file buffer: the failure comes while the
        // buffer is flushed, on completing the file and again on disposing it.
        var filler = Path.Combine(_dir, "filler");
        await File.WriteAllBytesAsync(filler, new byte[(256 - 16) * 1024], Ct);

        var error = await Record.ExceptionAsync(() => WriteAsync(part, rows: 4_000)); // ~48 KB of random values
        Assert.IsAssignableFrom<IOException>(error);
        Assert.Equal(["filler"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));

        // Space freed: the retry writes the part, and nothing else is in the directory.
        File.Delete(filler);
        await WriteAsync(part, rows: 4_000);
        Assert.Equal(["part-000003.parquet"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Leftovers_of_a_killed_writer_are_deleted_before_the_part_is_written_again()
    {
        var part = Path.Combine(_dir, "part-000001.parquet");
        await File.WriteAllTextAsync(Path.Combine(_dir, ".part-000001.parquet.0123456789abcdef.tmp"), "torn", Ct);
        await File.WriteAllTextAsync(Path.Combine(_dir, ".part-000002.parquet.0123456789abcdef.tmp"), "another part's", Ct);

        Assert.Equal(1, ParquetBatchWriter.DeleteLeftovers(part));
        await WriteAsync(part, rows: 10);
        Assert.Equal([".part-000002.parquet.0123456789abcdef.tmp", "part-000001.parquet"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    private static async Task WriteAsync(string path, int rows)
    {
        var random = new Random(1);
        var batch = new ColumnBatch(
        [
            new("key", ColumnKind.Int64, Enumerable.Range(0, rows).Select(i => (long)random.Next()).ToArray()),
            new("score", ColumnKind.Float32, Enumerable.Range(0, rows).Select(_ => random.NextSingle()).ToArray()),
        ]);
        await using var writer = await ParquetBatchWriter.CreateAsync(path, Columns, Ct);
        await writer.WriteAsync(batch, Ct);
        await writer.CompleteAsync(Ct);
    }

    private static bool Run(string command, params string[] arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
