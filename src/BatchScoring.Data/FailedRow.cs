using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>
/// A row that could not be scored: its position (<paramref name="RowNumber"/> within the chunk's source,
/// or within the request), its key when known, the offending column when known, and why.
/// </summary>
public sealed record FailedRow(Guid? JobId, string? RequestId, int? ChunkIndex, long RowNumber, string? Key, string? Column, string Reason)
{
    /// <summary>
    /// The key as read (long, int, string, bool, float, double or a UTC DateTime), written to <c>row_key_json</c> as a
    /// JSON scalar of the same type; null leaves that column null.
    /// </summary>
    public object? KeyValue { get; init; }
}

/// <summary>Binary COPY of <see cref="FailedRow"/>s into <c>scoring.failed_rows</c>.</summary>
public static class FailedRowWriter
{
    private const string CopySql =
        """
        COPY scoring.failed_rows (job_id, request_id, chunk_index, row_number, row_key, row_key_json, column_name, reason) FROM STDIN (FORMAT BINARY)
        """;

    /// <summary>Writes the rows in the connection's current transaction, if any; returns the row count.</summary>
    public static async Task<ulong> WriteAsync(NpgsqlConnection connection, IReadOnlyList<FailedRow> rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
        {
            return 0;
        }

        await using var importer = await connection.BeginBinaryImportAsync(CopySql, ct);
        foreach (var row in rows)
        {
            ArgumentNullException.ThrowIfNull(row);
            await importer.StartRowAsync(ct);
            if (row.JobId is { } jobId)
            {
                await importer.WriteAsync(jobId, NpgsqlDbType.Uuid, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await WriteTextAsync(importer, row.RequestId, ct);
            if (row.ChunkIndex is { } chunkIndex)
            {
                await importer.WriteAsync(chunkIndex, NpgsqlDbType.Integer, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await importer.WriteAsync(row.RowNumber, NpgsqlDbType.Bigint, ct);
            await WriteTextAsync(importer, row.Key, ct);
            if (KeyJson(row.KeyValue) is { } keyJson)
            {
                await importer.WriteAsync(keyJson, NpgsqlDbType.Jsonb, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await WriteTextAsync(importer, row.Column, ct);
            await importer.WriteAsync(row.Reason ?? "", NpgsqlDbType.Text, ct);
        }

        return await importer.CompleteAsync(ct);
    }

    /// <summary>The key as a JSON scalar of its own type; NaN and infinite keys as the strings "NaN", "Infinity", "-Infinity".</summary>
    public static string? KeyJson(object? key) => key switch
    {
        null => null,
        DateTime time => JsonSerializer.Serialize(time.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(time, DateTimeKind.Utc) : time.ToUniversalTime(), KeyJsonOptions),
        long or int or string or bool or float or double => JsonSerializer.Serialize(key, key.GetType(), KeyJsonOptions),
        _ => JsonSerializer.Serialize(Convert.ToString(key, CultureInfo.InvariantCulture), KeyJsonOptions),
    };

    private static readonly JsonSerializerOptions KeyJsonOptions = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private static Task WriteTextAsync(NpgsqlBinaryImporter importer, string? value, CancellationToken ct) =>
        value is null ? importer.WriteNullAsync(ct) : importer.WriteAsync(value, NpgsqlDbType.Text, ct);
}
