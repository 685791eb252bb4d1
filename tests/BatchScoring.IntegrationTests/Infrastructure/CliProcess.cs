using System.Diagnostics;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>Runs `batchscore` (the CLI built next to the tests) as a separate process, as a user would.</summary>
internal static class CliProcess
{
    public static Task<(int Exit, string Stdout, string Stderr)> RunAsync(CancellationToken cancellationToken, params string[] args) =>
        RunAsync(null, cancellationToken, args);

    /// <param name="environment">Variables to set (a null value removes the variable from the child's environment).</param>
    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(
        IReadOnlyDictionary<string, string?>? environment, CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "batchscore.dll"), .. args])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.Environment["COLUMNS"] = "200"; // wide tables: assertions look for whole words
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
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
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, stdout, await stderr);
    }
}
