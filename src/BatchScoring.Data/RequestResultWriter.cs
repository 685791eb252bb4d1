using System.Text;
using BatchScoring.Scoring.Data;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>
/// Binary COPY of a batch formed from many score requests into a <see cref="ResultTable"/>: like
/// <see cref="ResultTable.CopyAsync"/>, but <c>request_id</c> is given per row, so one COPY writes the rows of
/// every request in the batch (<c>job_id</c> stays null). Passthrough columns are not written.
/// </summary>
public static class RequestResultWriter
{
    /// <summary>Writes the rows in the connection's current transaction, if any; returns the row count.</summary>
    /// <param name="requestIds">The request id of each row of <paramref name="rows"/>.</param>
    public static async Task<ulong> CopyRequestRowsAsync(
        this ResultTable table,
        NpgsqlConnection connection,
        IReadOnlyList<string> requestIds,
        string modelName,
        int modelVersion,
        DateTimeOffset scoredAt,
        ColumnBatch rows,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(requestIds);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ArgumentNullException.ThrowIfNull(rows);
        if (requestIds.Count != rows.RowCount)
        {
            throw new ArgumentException($"{requestIds.Count} request ids for {rows.RowCount} rows.", nameof(requestIds));
        }

        if (table.Passthrough.Count > 0)
        {
            throw new ArgumentException($"Result table {table.QualifiedName} has passthrough columns; request rows have none.", nameof(table));
        }

        var columns = new List<ResultColumn>(1 + table.Outputs.Count) { table.Key };
        columns.AddRange(table.Outputs);
        var writers = new ColumnWriter[columns.Count];
        for (var i = 0; i < writers.Length; i++)
        {
            var source = rows.Find(columns[i].Name)
                ?? throw new ArgumentException($"Result table {table.QualifiedName} needs column \"{columns[i].Name}\" but the batch does not have it.", nameof(rows));
            writers[i] = ColumnWriter.Create(source, columns[i].Kind, table.QualifiedName);
        }

        if (rows.RowCount == 0)
        {
            return 0;
        }

        var sql = new StringBuilder("COPY ").Append(table.QuotedName).Append(" (").Append(ResultTable.Quote(table.Key.Name))
            .Append(", \"job_id\", \"request_id\", \"model_name\", \"model_version\", \"scored_at\"");
        foreach (var output in table.Outputs)
        {
            sql.Append(", ").Append(ResultTable.Quote(output.Name));
        }

        sql.Append(") FROM STDIN (FORMAT BINARY)");
        var at = scoredAt.UtcDateTime;
        await using var importer = await connection.BeginBinaryImportAsync(sql.ToString(), ct);
        for (var row = 0; row < rows.RowCount; row++)
        {
            await importer.StartRowAsync(ct);
            await writers[0].WriteAsync(importer, row, ct);
            await importer.WriteNullAsync(ct); // explicit: the column default reads a session setting a job COPY may have left
            await importer.WriteAsync(requestIds[row], NpgsqlDbType.Text, ct);
            await importer.WriteAsync(modelName, NpgsqlDbType.Text, ct);
            await importer.WriteAsync(modelVersion, NpgsqlDbType.Integer, ct);
            await importer.WriteAsync(at, NpgsqlDbType.TimestampTz, ct);
            for (var c = 1; c < writers.Length; c++)
            {
                await writers[c].WriteAsync(importer, row, ct);
            }
        }

        return await importer.CompleteAsync(ct);
    }
}

/// <summary>What an earlier delivery of a request already committed: its result rows and its failed rows, by key.</summary>
public sealed record CommittedRequestRows(
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, object?>> Scored,
    IReadOnlyDictionary<string, (string? Column, string Reason)> Failed);

public static class CommittedRequestReader
{
    /// <summary>
    /// Rows of request <paramref name="requestId"/> already in the results table (output values by column) and in
    /// <c>scoring.failed_rows</c>, restricted to <paramref name="keys"/> (the key column is indexed; request_id is not).
    /// </summary>
    public static async Task<CommittedRequestRows> ReadCommittedAsync(
        this ResultTable table, NpgsqlDataSource dataSource, string requestId, IReadOnlyList<string> keys, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(keys);
        var sql = new StringBuilder("SELECT ").Append(ResultTable.Quote(table.Key.Name));
        foreach (var output in table.Outputs)
        {
            sql.Append(", ").Append(ResultTable.Quote(output.Name));
        }

        sql.Append(" FROM ").Append(table.QuotedName).Append(" WHERE ").Append(ResultTable.Quote(table.Key.Name)).Append(" = ANY($1) AND request_id = $2");
        var scored = new Dictionary<string, IReadOnlyDictionary<string, object?>>(StringComparer.Ordinal);
        await using (var select = dataSource.CreateCommand(sql.ToString()))
        {
            select.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. keys] });
            select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = requestId });
            await using var reader = await select.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var outputs = new Dictionary<string, object?>(table.Outputs.Count, StringComparer.Ordinal);
                for (var i = 0; i < table.Outputs.Count; i++)
                {
                    outputs[table.Outputs[i].Name] = reader.IsDBNull(i + 1) ? null : reader.GetValue(i + 1);
                }

                scored[reader.GetString(0)] = outputs;
            }
        }

        var failed = new Dictionary<string, (string?, string)>(StringComparer.Ordinal);
        await using (var select = dataSource.CreateCommand("SELECT row_key, column_name, reason FROM scoring.failed_rows WHERE request_id = $1 AND row_key = ANY($2)"))
        {
            select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = requestId });
            select.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. keys] });
            await using var reader = await select.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                failed[reader.GetString(0)] = (reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2));
            }
        }

        return new CommittedRequestRows(scored, failed);
    }
}
