using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>A job whose definition can no longer be honoured (its model version was deleted, its record is gone).</summary>
public sealed class JobPlanException(string message) : Exception(message);

/// <summary>
/// Sorts what went wrong with a chunk. Permanent errors (unreadable or missing input, missing or changed model file,
/// input that does not fit the model, a result table that rejects the rows) give the same answer on every attempt:
/// the chunk fails at once and so does its job. Everything else (database or broker down, disk full, timeouts) is
/// transient: retried in place briefly, then by the reconciler with backoff.
/// </summary>
public static class ChunkErrors
{
    public static bool IsPermanent(Exception exception) => exception switch
    {
        DatasetException or ModelLoadException or InputMappingException or ResultTableMismatchException or JobPlanException => true,
        PostgresException pg => IsPermanentSqlState(pg.SqlState),
        ArgumentException or InvalidCastException or FormatException or NotSupportedException => true,
        // A full disk stays full until someone frees space: fail now with the reason; `jobs retry` resumes afterwards.
        IOException io when IsDiskFull(io) => true,
        _ => false,
    };

    /// <summary>
    /// SQLSTATE classes that repeat on every attempt: data exceptions (22), integrity (23), invalid names or
    /// privileges (42), and the like. Connection (08), rollback (40), resources (53), shutdown (57) are transient.
    /// </summary>
    public static bool IsPermanentSqlState(string sqlState) =>
        sqlState.Length >= 2 && sqlState[..2] is "22" or "23" or "2B" or "3F" or "42" or "44" or "0A";

    /// <summary>ENOSPC on Unix (the errno is the HResult there), ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    public static bool IsDiskFull(IOException exception) =>
        exception.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027)
        || exception.InnerException is IOException inner && IsDiskFull(inner);

    /// <summary>The reason recorded on the chunk and the job: names the file or model and the cause, never data.</summary>
    public static string Describe(Exception exception) => exception switch
    {
        DatasetException e => $"input unreadable: {e.Message}",
        ModelLoadException e => $"model unusable: {e.Message}",
        InputMappingException e => $"input does not fit the model: {e.Message}",
        ResultTableMismatchException e => $"result table mismatch: {e.Message}",
        JobPlanException e => e.Message,
        // A data exception's text may quote the value; keep only its kind.
        PostgresException e when e.SqlState.StartsWith("22", StringComparison.Ordinal) =>
            $"PostgreSQL rejected the rows ({e.SqlState}): {e.MessageText.Split(':')[0]}",
        PostgresException e => $"PostgreSQL error {e.SqlState}: {e.MessageText}",
        NpgsqlException e => $"PostgreSQL unavailable: {e.Message}",
        IOException e when IsDiskFull(e) => $"disk full (no space left on device); free space, then retry the job: {e.Message}",
        IOException e => $"I/O error: {e.Message}",
        UnauthorizedAccessException e => $"access denied: {e.Message}",
        _ => $"{exception.GetType().Name}: {exception.Message}",
    };
}
