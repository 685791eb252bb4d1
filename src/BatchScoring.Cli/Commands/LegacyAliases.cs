using System.CommandLine;
using System.CommandLine.Help;
using System.Runtime.CompilerServices;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// Old spellings of renamed options (<c>--name</c> before <c>--model</c>, ...). They still parse, so scripts keep
/// working, but help and shell completion show only the current name (docs/cli.md, "Renamed options").
/// </summary>
internal static class LegacyAliases
{
    private static readonly ConditionalWeakTable<Option, string[]> Legacy = [];

    /// <summary>Accepts <paramref name="oldNames"/> as hidden aliases of <paramref name="option"/>.</summary>
    public static T WithLegacy<T>(this T option, params string[] oldNames)
        where T : Option
    {
        foreach (var name in oldNames)
        {
            option.Aliases.Add(name);
        }

        Legacy.AddOrUpdate(option, oldNames);
        return option;
    }

    public static IReadOnlyList<string> Of(Option option) => Legacy.TryGetValue(option, out var names) ? names : [];

    /// <summary>The names help shows: the name and aliases, without the legacy ones.</summary>
    public static IEnumerable<string> VisibleNames(Option option) => new[] { option.Name }.Concat(option.Aliases).Except(Of(option));

    /// <summary>Removes every legacy alias under <paramref name="command"/> (before help or completions are produced).</summary>
    public static void Hide(Command command)
    {
        foreach (var option in command.Options)
        {
            foreach (var name in Of(option))
            {
                option.Aliases.Remove(name);
            }
        }

        foreach (var sub in command.Subcommands)
        {
            Hide(sub);
        }
    }

    /// <summary>Makes <c>--help</c> hide the legacy aliases of the whole tree before it writes help.</summary>
    public static void HideInHelp(RootCommand root)
    {
        if (root.Options.OfType<HelpOption>().FirstOrDefault() is { Action: HelpAction help } option)
        {
            option.Action = new HidingHelpAction(root, help);
        }
    }

    private sealed class HidingHelpAction(RootCommand root, HelpAction help) : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        // As help itself: `verb --help` shows help even when required options are missing.
        public override bool ClearsParseErrors => help.ClearsParseErrors;

        public override int Invoke(ParseResult parseResult)
        {
            Hide(root);
            return help.Invoke(parseResult);
        }
    }
}
