using System.CommandLine;
using BatchScoring.Cli.Commands;
using BatchScoring.Cli.Errors;

var root = new RootCommand("batchscore: asynchronous batch scoring of ONNX models over RabbitMQ and PostgreSQL.")
{
    DemoCommand.Create(),
    ScoreCommand.Create(),
    GenerateCommand.Create(),
    ServeCommand.Create(),
    MigrateCommand.Create(),
    ModelsCommand.Create(),
    JobsCommand.Create(),
    DriftCommand.Create(),
    LabelsCommand.Create(),
    LabelsCommand.CreatePerformance(),
    SchedulesCommand.Create(),
};
root.Options.Add(ApiClient.ApiOption);
root.Options.Add(ApiClient.KeyOption);
root.Options.Add(CliOptions.Verbose);

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
