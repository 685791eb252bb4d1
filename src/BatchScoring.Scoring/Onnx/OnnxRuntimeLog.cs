using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Onnx;

/// <summary>
/// Sends ONNX Runtime's own log lines (which it otherwise writes to stderr, raw and in colour) to the
/// <see cref="ILogger"/> of the model whose session wrote them. Each session gets a log id; lines from
/// the environment itself (not from a session) go to the latest logger given here or to a model load.
/// </summary>
public static class OnnxRuntimeLog
{
    private const string EnvironmentLogId = "BatchScoring";

    private static readonly ConcurrentDictionary<string, SessionLog> Sessions = new(StringComparer.Ordinal);
    private static readonly Lock EnvironmentLock = new();
    private static long _nextId;
    private static ILogger _environmentLogger = NullLogger.Instance;
    private static bool _environmentReady;

    /// <summary>
    /// Creates ONNX Runtime's process-wide environment with the forwarding callback, once. <see cref="ScoringModel.Load(byte[], ScoringSessionOptions, ILogger?, string?, string)"/>
    /// calls it; call it yourself before using ONNX Runtime any other way, since an environment created
    /// elsewhere first keeps writing to stderr.
    /// </summary>
    public static void EnsureEnvironment(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if (logger is not NullLogger)
        {
            _environmentLogger = logger;
        }

        lock (EnvironmentLock)
        {
            if (_environmentReady)
            {
                return;
            }

            _environmentReady = true;
            if (OrtEnv.IsCreated)
            {
                logger.LogDebug("The ONNX Runtime environment was created before the first model load; its log lines go to stderr.");
                return;
            }

            var creation = new EnvironmentCreationOptions
            {
                logId = EnvironmentLogId,
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                loggingFunction = Forward,
            };
            OrtEnv.CreateInstanceWithOptions(ref creation);
        }
    }

    /// <summary>Registers a session's logger; set the returned id as the session's <see cref="SessionOptions.LogId"/>.</summary>
    internal static string Register(ILogger logger, string source)
    {
        var id = $"model-{Interlocked.Increment(ref _nextId)}";
        Sessions[id] = new SessionLog(logger, source);
        return id;
    }

    internal static void Unregister(string logId) => Sessions.TryRemove(logId, out _);

    // Called by ONNX Runtime on its own threads: must never throw back into native code.
    private static void Forward(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        try
        {
            // A Run's logger id is the session's, optionally followed by ":" and the run tag.
            var sessionId = logId.Split(':', 2)[0];
            if (Sessions.TryGetValue(sessionId, out var session))
            {
                session.Write(severity, codeLocation, message);
            }
            else
            {
                _environmentLogger.Log(LevelOf(severity), "ONNX Runtime ({CodeLocation}): {OrtMessage}", codeLocation, message);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A failing log sink must not take inference down with it.
        }
    }

    private static LogLevel LevelOf(OrtLoggingLevel severity) => severity switch
    {
        OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    private sealed class SessionLog(ILogger logger, string source)
    {
        private readonly ConcurrentDictionary<string, bool> _warnedAt = new(StringComparer.Ordinal);

        public void Write(OrtLoggingLevel severity, string codeLocation, string message)
        {
            var level = LevelOf(severity);
            if (level == LogLevel.Warning && !_warnedAt.TryAdd(codeLocation, true))
            {
                // ONNX Runtime repeats some warnings on every Run (e.g. an output shape that differs from the
                // declared one): the first one per place is a warning, the repeats are details.
                level = LogLevel.Debug;
            }

            logger.Log(level, "ONNX Runtime, model {Source} ({CodeLocation}): {OrtMessage}", source, codeLocation, message);
        }
    }
}
