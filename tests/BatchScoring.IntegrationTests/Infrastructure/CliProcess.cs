using System.Diagnostics;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>Runs `batchscore` (the CLI built next to the tests) as a separate process, as a user would.</summary>
internal static class CliProcess
{
    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "batchscore.dll"), .. args])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.Environment["COLUMNS"] = "200"; // wide tables: assertions look for whole words
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, stdout, await stderr);
    }
}
