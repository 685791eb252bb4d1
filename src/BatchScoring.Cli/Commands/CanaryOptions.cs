using System.CommandLine;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>The <c>--canary</c> / <c>--percent</c> options of <c>models alias</c>, and how canaries read in its output and in <c>models history</c>.</summary>
internal static class CanaryOptions
{
    public static (Option<int?> Canary, Option<int?> Percent) Create() => (
        new Option<int?>("--canary") { Description = "Canary version: gets --percent of score request rows (by a stable hash of the row key). A move without it ends a running canary." },
        new Option<int?>("--percent") { Description = "Share of rows the canary gets, 1-99 (with --canary)." });

    public static void AddExamples(Command command)
    {
        command.Description +=
            "\n\nExamples:\n  batchscore models alias --model churn --alias production --version 5 --canary 4 --percent 10\n" +
            "  batchscore models alias --model churn --alias production --version 4   # promote v4, the canary ends";
    }

    /// <summary>A usage error, or null.</summary>
    public static string? Problem(ParseResult parse, Option<int?> canary, Option<int?> percent) =>
        (parse.GetValue(canary), parse.GetValue(percent)) switch
        {
            (null, null) => null,
            (null, _) => "--percent needs --canary (the canary version).",
            (_, null) => "--canary needs --percent (1-99).",
            (_, < 1 or > 99) => $"--percent must be between 1 and 99 (was {parse.GetValue(percent)}).",
            _ => null,
        };

    public static object Body(ParseResult parse, int version, bool force, Option<int?> canary, Option<int?> percent) =>
        parse.GetValue(canary) is { } canaryVersion
            ? new { version, force, canaryVersion, canaryPercent = parse.GetValue(percent) }
            : new { version, force };

    public static string Describe(ParseResult parse, Option<int?> canary, Option<int?> percent) =>
        parse.GetValue(canary) is { } canaryVersion ? $", canary v{canaryVersion} on {parse.GetValue(percent)}% of rows" : "";

    public static string Describe(ModelAliasChange change) =>
        (change.CanaryVersion is { } canary ? $", canary v{canary} on {change.CanaryPercent}% of rows" : "")
        + (change.EndedCanaryVersion is { } ended ? $", canary v{ended} ended" : "");
}
