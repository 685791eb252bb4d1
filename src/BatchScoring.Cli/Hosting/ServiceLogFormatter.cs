using System.Text;
using BatchScoring.Cli.Errors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace BatchScoring.Cli.Hosting;

public sealed class ServiceLogFormatterOptions : ConsoleFormatterOptions
{
    /// <summary>Append the full exception (stack trace) to a log line; otherwise only the chain of exception types and messages.</summary>
    public bool Verbose { get; set; }

    public SecretRedactor Redactor { get; set; } = SecretRedactor.Current;
}

/// <summary>
/// <c>serve</c>'s console log: one line per entry, an exception summarised as its chain of types and messages (the stack
/// trace only in verbose mode), secrets from configuration masked.
/// </summary>
public sealed class ServiceLogFormatter(IOptionsMonitor<ServiceLogFormatterOptions> options) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "batchscore";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }

        var settings = options.CurrentValue;
        var line = new StringBuilder()
            .Append(DateTime.Now.ToString(settings.TimestampFormat ?? "HH:mm:ss ", System.Globalization.CultureInfo.InvariantCulture))
            .Append(Level(logEntry.LogLevel)).Append(": ")
            .Append(logEntry.Category).Append('[').Append(logEntry.EventId.Id).Append("] ")
            .Append(ErrorReporter.OneLine(message ?? ""));
        if (logEntry.Exception is { } exception)
        {
            line.Append(" (").Append(Summary(exception)).Append(')');
            if (settings.Verbose)
            {
                line.AppendLine().Append(exception);
            }
        }

        textWriter.WriteLine(settings.Redactor.Redact(line.ToString()));
    }

    /// <summary>"Type: message → InnerType: message", at most five deep.</summary>
    public static string Summary(Exception exception)
    {
        var parts = new List<string>();
        for (var e = exception; e is not null && parts.Count < 5; e = e.InnerException)
        {
            parts.Add($"{e.GetType().Name}: {ErrorReporter.OneLine(e.Message)}");
        }

        return string.Join(" → ", parts);
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => level.ToString(),
    };
}
