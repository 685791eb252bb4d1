using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client.Exceptions;

namespace BatchScoring.Cli.Errors;

/// <summary>
/// Turns any exception into one line on stderr (what is wrong, what to do) and the documented exit code. The full
/// exception is printed only in verbose mode (<c>--verbose</c> or <c>BATCHSCORING_VERBOSE=1</c>).
/// </summary>
public static class ErrorReporter
{
    public const string VerboseVariable = "BATCHSCORING_VERBOSE";

    public static bool VerboseFromEnvironment =>
        Environment.GetEnvironmentVariable(VerboseVariable) is { } v && (v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase));

    public static int Report(Exception exception, bool verbose)
    {
        var (code, message) = Describe(exception);
        Console.Error.WriteLine(SecretRedactor.Current.Redact($"error: {OneLine(message)}"));
        if (verbose)
        {
            Console.Error.WriteLine(SecretRedactor.Current.Redact(exception.ToString()));
        }

        return code;
    }

    /// <summary>Prints a user-facing error line (already worded) and returns its exit code.</summary>
    public static int Print(int code, string message)
    {
        Console.Error.WriteLine(SecretRedactor.Current.Redact($"error: {OneLine(message)}"));
        return code;
    }

    public static (int ExitCode, string Message) Describe(Exception exception)
    {
        switch (exception)
        {
            case CliException cli:
                return (cli.ExitCode, cli.Message);
            case OptionsValidationException options:
                return (ExitCodes.Usage, $"invalid configuration: {string.Join("; ", options.Failures)}");
            case OperationCanceledException when exception.InnerException is not TimeoutException:
                return (ExitCodes.Interrupted, "interrupted");
            case AggregateException aggregate when aggregate.InnerExceptions.Count == 1:
                return Describe(aggregate.InnerExceptions[0]);
        }

        if (Find<AuthenticationFailureException>(exception) is not null)
        {
            return (ExitCodes.Usage, "RabbitMQ refused the user name or password: check the credentials in ConnectionStrings__RabbitMq.");
        }

        if (Find<BrokerUnreachableException>(exception) is not null || IsMassTransitConnectionFailure(exception))
        {
            var where = Find<ConnectFailureException>(exception)?.Message ?? Innermost(exception).Message;
            return (ExitCodes.Unreachable, $"RabbitMQ is not reachable ({where}): start it, or fix ConnectionStrings__RabbitMq.");
        }

        if (Find<PostgresException>(exception) is { } postgres)
        {
            return postgres.SqlState switch
            {
                "28P01" or "28000" => (ExitCodes.Usage, $"PostgreSQL refused the login ({postgres.MessageText}): check the user and password in ConnectionStrings__Postgres."),
                "3D000" => (ExitCodes.Usage, $"PostgreSQL: {postgres.MessageText}: create it, or fix Database= in ConnectionStrings__Postgres."),
                "57P01" or "57P02" or "57P03" or "53300" => (ExitCodes.Unreachable, $"PostgreSQL is not accepting connections ({postgres.MessageText}): retry when it is up."),
                _ => (ExitCodes.Failed, $"PostgreSQL error {postgres.SqlState}: {postgres.MessageText}"),
            };
        }

        if (Find<NpgsqlException>(exception) is { } npgsql && (npgsql.IsTransient || Find<SocketException>(npgsql) is not null))
        {
            return (ExitCodes.Unreachable, $"PostgreSQL is not reachable ({npgsql.Message}): start it, or fix ConnectionStrings__Postgres.");
        }

        if (Find<HttpRequestException>(exception) is { } http)
        {
            return (ExitCodes.Unreachable, $"cannot reach the API ({http.Message}): is `batchscore serve` running? Set --api or BATCHSCORING_API.");
        }

        return (ExitCodes.Failed,
            $"unexpected {exception.GetType().Name}: {Innermost(exception).Message} (rerun with --verbose or {VerboseVariable}=1 for details)");
    }

    public static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static T? Find<T>(Exception? exception)
        where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T match)
            {
                return match;
            }

            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    if (Find<T>(inner) is { } found)
                    {
                        return found;
                    }
                }
            }
        }

        return null;
    }

    private static bool IsMassTransitConnectionFailure(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e.GetType().FullName is "MassTransit.RabbitMqConnectionException" or "MassTransit.RabbitMqTransport.RabbitMqConnectionException")
            {
                return true;
            }
        }

        return false;
    }

    private static Exception Innermost(Exception exception)
    {
        var e = exception;
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}
