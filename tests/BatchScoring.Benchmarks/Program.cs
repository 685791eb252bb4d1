using BatchScoring.Benchmarks;
using BatchScoring.Cli.Errors;

// Same conventions as batchscore: usage errors exit 2, failures one line (the full exception with --verbose or
// BATCHSCORING_VERBOSE=1), an unreachable PostgreSQL or RabbitMQ exits 7.
var parse = BenchCommand.Create().Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"error: {error.Message}");
    }

    Console.Error.WriteLine("See `dotnet run -c Release --project tests/BatchScoring.Benchmarks -- --help`.");
    return ExitCodes.Usage;
}

try
{
    return await parse.InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception ex)
{
    return ErrorReporter.Report(ex, ErrorReporter.VerboseFromEnvironment);
}
