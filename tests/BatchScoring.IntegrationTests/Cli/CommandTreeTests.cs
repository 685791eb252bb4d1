using System.CommandLine;
using BatchScoring.Cli;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// Walks the whole <c>batchscore</c> command tree: every verb has examples in its help, <c>--json</c> where it prints
/// data, and one flag name per concept; renamed flags still parse under their old names but are not shown.
/// </summary>
public sealed class CommandTreeTests
{
    /// <summary>Verbs without <c>--json</c>, and why: they print no data a script would parse.</summary>
    private static readonly Dictionary<string, string> NoJson = new()
    {
        ["serve"] = "runs the service; prints logs",
        ["demo"] = "a guided tour for people; its files are the output",
        ["completion"] = "prints a shell script",
    };

    /// <summary>One concept, its flag, and the other spellings no verb may show for it.</summary>
    private static readonly (string Concept, string Flag, string[] Others)[] Concepts =
    [
        ("model name", "--model", ["--name", "--model-name"]),
        ("ONNX model file", "--model-file", ["--file", "--onnx", "--model-path"]),
        ("schedule name", "--schedule", ["--name", "--schedule-name"]),
        ("where results are written (file, folder, table)", "--output-*", ["--out", "--output", "--dir", "--html", "--table", "--parquet"]),
        ("machine-readable output", "--json", ["--format", "--output-json", "--machine"]),
        ("time window of samples or rows", "--window", ["--window-hours", "--window-days", "--since"]),
        ("how long to wait", "--timeout", ["--wait-timeout", "--max-wait"]),
        ("row key column", "--key-column", ["--key", "--id-column", "--key-col"]),
        ("model version or alias", "--version", ["--model-version"]),
    ];

    [Fact]
    public void Every_verb_shows_examples_that_run_that_verb()
    {
        foreach (var (path, _) in Leaves(CliApp.CreateRoot()))
        {
            var help = Help(path);
            var at = help.IndexOf("Examples:", StringComparison.Ordinal);
            Assert.True(at >= 0, $"`batchscore {path} --help` has no Examples: block:\n{help}");
            var examples = help[at..].Split('\n').Skip(1).TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal)).ToList();
            Assert.True(examples.Any(l => l.Contains($"batchscore {path}", StringComparison.Ordinal)), $"no example of `batchscore {path}`:\n{help}");
        }
    }

    [Fact]
    public void Every_verb_that_prints_data_has_json()
    {
        var leaves = Leaves(CliApp.CreateRoot()).ToList();
        foreach (var (path, command) in leaves.Where(l => !NoJson.ContainsKey(l.Path)))
        {
            Assert.True(command.Options.Any(o => o.Name == "--json"), $"`batchscore {path}` has no --json");
        }

        // The exemptions name real verbs, and those really lack --json (a verb that gains one leaves the list).
        foreach (var path in NoJson.Keys)
        {
            var command = Assert.Single(leaves, l => l.Path == path).Command;
            Assert.DoesNotContain(command.Options, o => o.Name == "--json");
        }
    }

    [Fact]
    public void One_flag_per_concept_across_all_verbs()
    {
        var root = CliApp.CreateRoot(["[suggest]"]); // the tree as help and completion show it
        foreach (var (path, command) in Leaves(root))
        {
            var shown = command.Options.SelectMany(o => new[] { o.Name }.Concat(o.Aliases)).ToHashSet();
            foreach (var (concept, flag, others) in Concepts)
            {
                foreach (var other in others.Where(shown.Contains))
                {
                    Assert.Fail($"`batchscore {path}` shows {other} for the {concept}; every verb uses {flag}.");
                }
            }
        }
    }

    [Theory]
    [InlineData("models history --name churn --alias production", "--name", "--model", "churn")]
    [InlineData("models register --name churn --file churn.onnx", "--file", "--model-file", "churn.onnx")]
    [InlineData("drift reports --name churn --html drift.html", "--html", "--output-html", "drift.html")]
    [InlineData("drift audit --name churn --window-hours 6", "--window-hours", "--window", "6")]
    [InlineData("performance report --name churn", "--name", "--model", "churn")]
    [InlineData("schedules pause --name nightly", "--name", "--schedule", "nightly")]
    [InlineData("score --model m.onnx --input d.parquet --output s.parquet", "--output", "--output-parquet", "s.parquet")]
    [InlineData("score --model m.onnx --input d.parquet --output s.parquet", "--model", "--model-file", "m.onnx")]
    [InlineData("generate --out samples", "--out", "--output-dir", "samples")]
    [InlineData("demo --dir /tmp/demo", "--dir", "--output-dir", "demo")]
    public void Old_spellings_still_parse_but_help_shows_only_the_new_name(string line, string old, string flag, string expected)
    {
        var parse = CliApp.CreateRoot().Parse(line);
        Assert.Empty(parse.Errors);
        var result = parse.GetResult(parse.CommandResult.Command.Options.Single(o => o.Name == flag));
        Assert.NotNull(result);
        Assert.EndsWith(expected, string.Join(" ", result.Tokens.Select(t => t.Value)), StringComparison.Ordinal);

        var path = string.Join(' ', line.Split(' ').TakeWhile(w => !w.StartsWith("--", StringComparison.Ordinal)));
        var help = Help(path);
        var options = help[help.IndexOf("Options:", StringComparison.Ordinal)..];
        Assert.Contains($"{flag} <", options, StringComparison.Ordinal);
        Assert.DoesNotMatch($@"(^|[\s,]){old}([\s,]|$)", options);
    }

    private static string Help(string path)
    {
        var output = new StringWriter();
        var exit = CliApp.CreateRoot().Parse([.. path.Split(' '), "--help"]).Invoke(new InvocationConfiguration { Output = output, Error = output });
        Assert.Equal(0, exit);
        return output.ToString();
    }

    private static IEnumerable<(string Path, Command Command)> Leaves(Command command, string path = "")
    {
        foreach (var sub in command.Subcommands)
        {
            var subPath = path.Length == 0 ? sub.Name : $"{path} {sub.Name}";
            if (sub.Subcommands.Count == 0)
            {
                yield return (subPath, sub);
            }
            else
            {
                foreach (var leaf in Leaves(sub, subPath))
                {
                    yield return leaf;
                }
            }
        }
    }
}
