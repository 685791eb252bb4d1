namespace BatchScoring.Cli.Errors;

/// <summary>
/// An error the user can act on: <see cref="Exception.Message"/> is the one line printed (what is wrong and what to do),
/// <see cref="ExitCode"/> the documented exit code.
/// </summary>
public sealed class CliException : Exception
{
    public CliException(int exitCode, string message, Exception? innerException = null)
        : base(message, innerException) => ExitCode = exitCode;

    public CliException()
        : this(ExitCodes.Failed, "failed")
    {
    }

    public CliException(string message)
        : this(ExitCodes.Failed, message)
    {
    }

    public CliException(string message, Exception innerException)
        : this(ExitCodes.Failed, message, innerException)
    {
    }

    public int ExitCode { get; }

    /// <summary>The API's problem document (JSON) behind this error, when there was one (e.g. a signature diff for <c>--json</c>).</summary>
    public string? Problem { get; init; }
}
