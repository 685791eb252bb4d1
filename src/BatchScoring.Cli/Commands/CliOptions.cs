using System.CommandLine;
using Spectre.Console;

namespace BatchScoring.Cli.Commands;

internal static class CliOptions
{
    /// <summary>Full exceptions (with stack traces) on errors; also <c>BATCHSCORING_VERBOSE=1</c>.</summary>
    public static Option<bool> Verbose { get; } = new("--verbose")
    {
        Description = $"Print the full exception of an error (env {Errors.ErrorReporter.VerboseVariable}=1).",
        Recursive = true,
    };

    /// <summary>The model's name, <c>--model</c> on every verb (<c>--name</c> before: still accepted, not shown).</summary>
    public static Option<string> ModelName() => new Option<string>("--model") { Description = "Model name.", Required = true }.WithLegacy("--name");

    /// <summary>Machine-readable output on stdout: the same JSON the API answers (docs/cli.md).</summary>
    public static Option<bool> Json(string? description = null) => new("--json") { Description = description ?? "Machine-readable output (JSON on stdout)." };

    /// <summary>A duration: seconds, or a number with s, m or h (90, 90s, 5m, 1h).</summary>
    public static Option<TimeSpan?> Duration(string name, string description) => new(name)
    {
        Description = description + " Seconds, or a number with s, m or h (90, 5m, 1h).",
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value.Trim() : "";
            var unit = text.Length > 0 && char.IsLetter(text[^1]) ? char.ToLowerInvariant(text[^1]) : 's';
            var number = char.IsLetter(text.LastOrDefault()) ? text[..^1] : text;
            if (double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value)
                && value > 0 && double.IsFinite(value) && unit is 's' or 'm' or 'h')
            {
                return TimeSpan.FromSeconds(value * unit switch { 'h' => 3600, 'm' => 60, _ => 1 });
            }

            result.AddError($"{name} must be a positive duration such as 90, 90s, 5m or 1h (was '{text}').");
            return null;
        },
    };

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
