using System.Diagnostics;
using System.Text;

namespace BatchScoring.Benchmarks;

/// <summary>
/// Runs a .NET program of the benchmark's output folder (the <c>batchscore</c> CLI, the peer) as a child process the
/// way a user starts it, timed from the start of the process to its exit.
/// </summary>
internal static class ChildCommand
{
    public sealed record Outcome(int ExitCode, double Seconds, string Stdout, string Stderr);

    /// <summary>
    /// An executable as it is; for an assembly, the apphost next to it when there is one (what a user runs), else the
    /// dotnet host with the assembly.
    /// </summary>
    public static ProcessStartInfo StartInfo(string assemblyPath)
    {
        if (!assemblyPath.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            return new ProcessStartInfo(assemblyPath); // an executable: a published tool, an apphost
        }

        var apphost = Path.Combine(Path.GetDirectoryName(assemblyPath)!, Path.GetFileNameWithoutExtension(assemblyPath));
        if (!OperatingSystem.IsWindows() && File.Exists(apphost))
        {
            return new ProcessStartInfo(apphost);
        }

        var host = Environment.ProcessPath is { } path && string.Equals(Path.GetFileNameWithoutExtension(path), "dotnet", StringComparison.Ordinal)
            ? path
            : "dotnet";
        var start = new ProcessStartInfo(host);
        start.ArgumentList.Add(assemblyPath);
        return start;
    }

    public static async Task<Outcome> RunAsync(
        string assemblyPath, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = StartInfo(assemblyPath);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stdout)
                {
                    stdout.AppendLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };

        var watch = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"{Path.GetFileName(assemblyPath)} {string.Join(' ', start.ArgumentList.Take(3))} did not end within {timeout.TotalMinutes:F0} min.");
        }

        var seconds = watch.Elapsed.TotalSeconds;
        // WaitForExitAsync returns after the output streams reached their end.
        lock (stdout)
        {
            lock (stderr)
            {
                return new Outcome(process.ExitCode, seconds, stdout.ToString(), stderr.ToString());
            }
        }
    }
}
