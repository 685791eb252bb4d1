namespace BatchScoring.Cli.Errors;

/// <summary>Process exit codes of every verb (README, "Exit codes").</summary>
public static class ExitCodes
{
    public const int Succeeded = 0;

    /// <summary>The job failed, the service refused the operation (not found, conflict), or an unexpected error.</summary>
    public const int Failed = 1;

    /// <summary>Bad arguments, invalid configuration, or input the service refused (HTTP 400/422).</summary>
    public const int Usage = 2;

    public const int DriftFound = 3;
    public const int InsufficientData = 4;
    public const int Cancelled = 5;

    /// <summary><c>--timeout</c> elapsed while waiting.</summary>
    public const int TimedOut = 6;

    /// <summary>The API, PostgreSQL or RabbitMQ could not be reached, after retries.</summary>
    public const int Unreachable = 7;

    /// <summary>Interrupted (Ctrl+C), as shells report SIGINT.</summary>
    public const int Interrupted = 130;
}
