using Microsoft.Extensions.Logging;

namespace BatchScoring.Application.Drift;

/// <summary>Log messages of drift audits and sampling, source-generated. Event ids 3200–3299 belong to drift.</summary>
internal static partial class DriftLog
{
    [LoggerMessage(EventId = 3200, Level = LogLevel.Information, Message = "Model {Model} v{Version}: fire {Fire} already stored drift report {Report}")]
    public static partial void AlreadyAudited(this ILogger logger, string model, int version, string fire, Guid report);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Information,
        Message = "Model {Model} v{Version}: drift (report {Report}, {Streak} drifted audits in a row): DriftDetected {Detected}, RetrainingRequested {Retraining}")]
    public static partial void DriftEvents(this ILogger logger, string model, int version, Guid report, int streak, string detected, string retraining);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Information, Message = "Model {Model} v{Version}: drift audit {Report} over {Rows} sampled rows: {Outcome}")]
    public static partial void Audited(this ILogger logger, string model, int version, Guid report, long rows, string outcome);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Information, Message = "Drift: deleted {Count} samples older than {Days} days")]
    public static partial void SamplesDeleted(this ILogger logger, long count, int days);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Error, Message = "Drift audit of {Model} v{Version} failed")]
    public static partial void AuditFailed(this ILogger logger, Exception exception, string model, int version);

    [LoggerMessage(EventId = 3210, Level = LogLevel.Warning, Message = "Drift sample for {Model} v{Version} not written: {Error}")]
    public static partial void SampleNotWritten(this ILogger logger, string model, int version, string error);
}
