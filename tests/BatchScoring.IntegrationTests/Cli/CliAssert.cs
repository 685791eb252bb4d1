using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace BatchScoring.IntegrationTests.Cli;

internal static class CliAssert
{
    /// <summary>Exactly one "error:" line, no stack trace, the expected exit code.</summary>
    public static void OneLineError(int expectedExit, (int Exit, string Stdout, string Stderr) run, string? mustContain = null)
    {
        var all = run.Stdout + run.Stderr;
        Assert.True(run.Exit == expectedExit, $"exit {run.Exit}, expected {expectedExit}:\n{all}");
        Assert.DoesNotContain("   at ", all, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", all, StringComparison.Ordinal);
        var errors = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 1, $"expected one error line:\n{all}");
        if (mustContain is not null)
        {
            Assert.Contains(mustContain, errors[0], StringComparison.Ordinal);
        }
    }

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs the CLI with a time limit; a process still running then is killed (<c>TimedOut</c>).</summary>
    public static async Task<(int Exit, string Stdout, string Stderr, bool TimedOut)> RunWithLimitAsync(
        IReadOnlyDictionary<string, string?> environment, TimeSpan limit, CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "batchscore.dll"), .. args])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        var timedOut = false;
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            timedOut = true;
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(cancellationToken);
        }

        return (process.ExitCode, await stdout, await stderr, timedOut);
    }
}
