using System.CommandLine;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

internal static class CliOptions
{
    /// <summary>A list option accepting both `--x a,b` and `--x a --x b`.</summary>
    public static Option<string[]> List(string name, string description) =>
        new(name) { Description = description, AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [] };

    public static IReadOnlyList<string> Values(ParseResult parse, Option<string[]> option) =>
        (parse.GetValue(option) ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();

    public static IReadOnlyList<string>? ValuesOrNull(ParseResult parse, Option<string[]> option) =>
        Values(parse, option) is { Count: > 0 } values ? values : null;
}

/// <summary>A progress bar on a terminal; periodic plain lines when output is redirected (CI logs).</summary>
internal static class CliProgress
{
    public static async Task RunAsync(string title, long total, Func<Action<long>, Task> work)
    {
        if (Console.IsErrorRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            long done = 0;
            var lastReport = DateTime.UtcNow;
            await work(n =>
            {
                done += n;
                if (DateTime.UtcNow - lastReport > TimeSpan.FromSeconds(5))
                {
                    lastReport = DateTime.UtcNow;
                    Console.Error.WriteLine($"{title}: {done:N0}/{total:N0} rows");
                }
            });
            return;
        }

        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedlessColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(title, maxValue: Math.Max(1, total));
                await work(n => task.Increment(n));
            });
    }

    /// <summary>Shows rows done and rows/s (Spectre's transfer column assumes bytes).</summary>
    private sealed class TransferSpeedlessColumn : ProgressColumn
    {
        public override Spectre.Console.Rendering.IRenderable Render(Spectre.Console.Rendering.RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Markup($"{task.Value:N0} rows {(task.Speed is { } s ? $"{s:N0}/s" : "")}");
    }
}
