using System.Diagnostics;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Parquet;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// The Parquet output directory on a small tmpfs that fills up mid-job: the job fails with a reason that says so, no
/// torn file is visible, and `jobs retry` completes once space is freed (the tmpfs is remounted larger).
/// Needs root (mount); skipped with the reason otherwise.
/// </summary>
[Trait(FaultPlan.Trait, FaultPlan.Category)]
public sealed class DiskFullFaultTests(ServerFixture servers, ITestOutputHelper output)
{
    private const int Rows = 60_000;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Disk_full_while_writing_parquet_fails_clearly_and_retry_completes_after_space_is_freed()
    {
        // Full set only: until a chunk that exhausts its retries fails its job, this scenario waits minutes for nothing.
        Assert.SkipUnless(FaultPlan.Full, "disk-full scenario runs in the full fault set (./build.sh faults)");
        var mountPoint = Directory.CreateTempSubdirectory("bs-diskfull-").FullName;
        var mount = await RunAsync("mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", mountPoint);
        if (mount.Exit != 0)
        {
            FaultReport.Record(output, "disk full while writing Parquet", 0, null, $"not run: cannot mount a tmpfs here ({mount.Output.Trim()})");
            Assert.Skip($"mounting a tmpfs needs root: {mount.Output}");
        }

        try
        {
            await using var host = await ServiceTestHost.StartAsync(servers, "fdisk", ServiceRoles.All, Ct, new Dictionary<string, string>
            {
                ["BatchScoring:ChunkConcurrency"] = "1",
            });
            await host.RegisterModelAsync("fdisk", SampleModels.Mlp([8, 16, 1], seed: 7).Bytes, Ct);
            var input = Path.Combine(host.WorkDir, "in.parquet");
            await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = Rows, Features = 8, RowGroupRows = 2_000 }, Ct);
            var outputDir = Path.Combine(mountPoint, "out");
            var (_, job, body) = await host.SubmitAsync(
                new SubmitScoringJob { Model = "fdisk", Input = input, KeyColumn = "customer_id", OutputParquet = outputDir, ChunkRows = 2_000 }, Ct);
            Assert.True(job is not null, body);

            var (failed, ended) = await FaultReport.WaitForEndOrStatusAsync(host, job!.Id, TimeSpan.FromMinutes(2), Ct);
            var torn = await UnreadableVisibleFilesAsync(outputDir);
            var hidden = Directory.Exists(outputDir) ? Directory.GetFiles(outputDir, ".*").Length : 0;
            var reason = failed.Error ?? string.Join("; ", failed.FailureSummary.Select(f => f.Reason));
            var problems = new List<string>();
            if (!ended || failed.State != "failed")
            {
                problems.Add($"with the disk full the job is {FaultReport.Describe(failed, ended)}");
            }

            if (!reason.Contains("space", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"the reason does not say the disk is full: '{reason}'");
            }

            if (torn.Count > 0)
            {
                problems.Add($"torn files visible: {string.Join(", ", torn)}");
            }

            await RunAsync("mount", "-o", "remount,size=64m", mountPoint);
            using var retry = await host.Client.PostAsync($"/api/jobs/{job.Id}/retry", null, Ct);
            var retryBody = await retry.Content.ReadAsStringAsync(Ct);
            var (final, finalEnded) = retry.IsSuccessStatusCode
                ? await FaultReport.WaitForEndOrStatusAsync(host, job.Id, TimeSpan.FromMinutes(2), Ct)
                : (await host.GetStatusAsync(job.Id, Ct), true);
            var (keys, distinct) = await ReadKeysAsync(outputDir);
            var tally = new RowTally(Rows, Rows - distinct, keys - distinct, 0);
            if (!retry.IsSuccessStatusCode)
            {
                problems.Add($"retry answered {(int)retry.StatusCode}: {retryBody}");
            }
            else if (!finalEnded || final.State != "succeeded" || !tally.Exact)
            {
                problems.Add($"after the retry the job is {FaultReport.Describe(final, finalEnded)}");
            }

            var leftovers = Directory.Exists(outputDir) ? Directory.GetFiles(outputDir, ".*").Length : 0;
            FaultReport.Record(output, "disk full while writing Parquet (300 KB tmpfs), then `jobs retry` after remounting it at 64 MB", 1, tally,
                (problems.Count == 0 ? "" : "FAILED: " + string.Join("; ", problems) + "; ")
                + $"failure reason: '{Shorten(reason)}'; torn visible files: {torn.Count}; hidden temp files after the failure {hidden}, after the retry {leftovers}");
            Assert.Empty(problems);
        }
        finally
        {
            await RunAsync("umount", "-l", mountPoint);
            Directory.Delete(mountPoint, recursive: true);
        }
    }

    private static string Shorten(string text) => text.Length <= 160 ? text : text[..160] + "…";

    /// <summary>Visible (not dot-prefixed) .parquet files that do not open as Parquet.</summary>
    private static async Task<List<string>> UnreadableVisibleFilesAsync(string directory)
    {
        var torn = new List<string>();
        if (!Directory.Exists(directory))
        {
            return torn;
        }

        foreach (var file in Directory.GetFiles(directory, "*.parquet").Where(f => !Path.GetFileName(f).StartsWith('.')))
        {
            try
            {
                await using var stream = File.OpenRead(file);
                await using var reader = await ParquetReader.CreateAsync(stream, cancellationToken: Ct);
                _ = reader.RowGroupCount;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
            {
                torn.Add(Path.GetFileName(file));
            }
        }

        return torn;
    }

    private static async Task<(long Keys, long Distinct)> ReadKeysAsync(string directory)
    {
        var keys = new HashSet<long>();
        long count = 0;
        if (!Directory.Exists(directory))
        {
            return (0, 0);
        }

        foreach (var file in Directory.GetFiles(directory, "part-*.parquet"))
        {
            await using var stream = File.OpenRead(file);
            await using var reader = await ParquetReader.CreateAsync(stream, cancellationToken: Ct);
            var field = reader.Schema.DataFields.First(f => f.Name == "customer_id");
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var values = new long?[group.RowCount];
                await group.ReadAsync<long>(field, values.AsMemory(), null, Ct);
                count += values.Length;
                keys.UnionWith(values.Where(v => v is >= 1 and <= Rows).Select(v => v!.Value));
            }
        }

        return (count, keys.Count);
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = await process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = await process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return (process.ExitCode, stdout + stderr);
    }
}
