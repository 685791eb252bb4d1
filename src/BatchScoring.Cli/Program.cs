using System.CommandLine;
using BatchScoring.Cli;
using BatchScoring.Cli.Commands;
using BatchScoring.Cli.Errors;

var root = CliApp.CreateRoot(args);
var parse = root.Parse(args);
var verbose = ErrorReporter.VerboseFromEnvironment || (parse.Errors.Count == 0 && parse.GetValue(CliOptions.Verbose));
if (parse.Errors.Count > 0)
{
    // Exit code 2 for usage errors (System.CommandLine's default is 1, which means "failed" here).
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine(SecretRedactor.Current.Redact($"error: {error.Message}"));
    }

    Console.Error.WriteLine($"See `{string.Join(' ', ["batchscore", .. CommandPath(parse.CommandResult), "--help"])}`.");
    return ExitCodes.Usage;
}

try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception ex)
{
    return ErrorReporter.Report(ex, verbose);
}

static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
{
    var names = new Stack<string>();
    for (var r = result; r?.Parent is System.CommandLine.Parsing.CommandResult parent; r = parent)
    {
        names.Push(r.Command.Name);
    }

    return names;
}
