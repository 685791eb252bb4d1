using System.Diagnostics;
using System.Globalization;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Application.Performance;

/// <summary>
/// Body of <c>POST /api/models/{name}/labels</c>: a Parquet/CSV file or directory as the service sees it
/// (<see cref="Input"/>), or a query (<see cref="InputSql"/>) on a named PostgreSQL source (<see cref="InputSource"/>).
/// </summary>
public sealed record LabelIngestRequest
{
    public string? Input { get; init; }

    public string? InputSql { get; init; }

    public string? InputSource { get; init; }

    /// <summary>The column holding the row key, as the results tables' key column holds it.</summary>
    public required string KeyColumn { get; init; }

    /// <summary>The column holding the outcome: a class (text, integer, boolean) or a number.</summary>
    public required string LabelColumn { get; init; }

    /// <summary>Optional timestamp column: when each outcome was known (default: the ingest time).</summary>
    public string? LabelledAtColumn { get; init; }
}

/// <summary>What an ingest did. <paramref name="Skipped"/>: rows without a key or a label.</summary>
public sealed record LabelIngestResult(string Model, string Source, long Rows, long Inserted, long Updated, long Skipped, double Seconds);

/// <summary>An ingest refused for its input (missing column, unreadable file, failing query): a 400 with this message.</summary>
public sealed class LabelIngestException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Reads labels batch by batch (a Parquet row group or a CSV row range at a time, or <see cref="BatchRows"/> rows of a
/// query) and upserts them into <c>scoring.labels</c> in one transaction: memory stays bounded by one batch, and a
/// re-ingest of a key replaces its label.
/// </summary>
public sealed class LabelIngester(LabelStore labels, NamedSources sources, StorageRoots roots, ILogger<LabelIngester> logger)
{
    public const int BatchRows = 50_000;

    public async Task<LabelIngestResult> IngestAsync(string model, LabelIngestRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.KeyColumn) || string.IsNullOrWhiteSpace(request.LabelColumn))
        {
            throw new LabelIngestException("keyColumn and labelColumn are required.");
        }

        var file = !string.IsNullOrWhiteSpace(request.Input);
        var sql = !string.IsNullOrWhiteSpace(request.InputSql);
        if (file == sql)
        {
            throw new LabelIngestException("Give either input (a Parquet or CSV file or directory) or inputSql with inputSource.");
        }

        if (sql && string.IsNullOrWhiteSpace(request.InputSource))
        {
            throw new LabelIngestException("inputSql needs inputSource: the name of a PostgreSQL source configured under BatchScoring:Sources.");
        }

        var clock = Stopwatch.StartNew();
        var source = file ? request.Input! : $"sql:{request.InputSource}";
        await using var writer = await labels.BeginAsync(model, source, cancellationToken);
        var (rows, skipped) = file
            ? await ReadFileAsync(request, writer, cancellationToken)
            : await ReadQueryAsync(request, writer, cancellationToken);
        var (inserted, updated) = await writer.CommitAsync(cancellationToken);
        logger.LogInformation(
            "Labels of {Model} from {Source}: {Rows} rows, {Inserted} new, {Updated} replaced, {Skipped} skipped", model, source, rows, inserted, updated, skipped);
        return new LabelIngestResult(model, source, rows, inserted, updated, skipped, clock.Elapsed.TotalSeconds);
    }

    private async Task<(long Rows, long Skipped)> ReadFileAsync(LabelIngestRequest request, LabelWriter writer, CancellationToken cancellationToken)
    {
        DatasetPlan plan;
        try
        {
            plan = await Dataset.PlanAsync(request.Input!, BatchRows, roots, cancellationToken);
        }
        catch (DatasetException ex)
        {
            throw new LabelIngestException(ex.Message, ex);
        }

        var wanted = Wanted(request).Select(name => plan.FindColumn(name) ?? throw new LabelIngestException(
            $"Input '{request.Input}' has no column '{name}' (columns: {string.Join(", ", plan.Columns.Select(c => c.Name))}).")).ToList();
        if (request.LabelledAtColumn is not null && wanted[2].Kind != ColumnKind.Timestamp)
        {
            throw new LabelIngestException($"Column '{request.LabelledAtColumn}' must be a timestamp (is {wanted[2].Kind}).");
        }

        long rows = 0, skipped = 0;
        foreach (var chunk in plan.Chunks)
        {
            SourceBatch batch;
            try
            {
                batch = await Dataset.ReadChunkAsync(plan.Format, chunk, wanted, roots, cancellationToken);
            }
            catch (DatasetException ex)
            {
                throw new LabelIngestException(ex.Message, ex);
            }

            var columns = batch.Batch.Columns;
            var bad = batch.Issues.Select(i => i.Row).ToHashSet();
            var labelled = new List<LabelRow>(batch.Batch.RowCount);
            for (var row = 0; row < batch.Batch.RowCount; row++)
            {
                var at = columns.Count > 2 && columns[2].GetValue(row) is DateTime time ? new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)) : (DateTimeOffset?)null;
                if (!bad.Contains(row) && ToRow(columns[0].GetValue(row), columns[1].GetValue(row), at) is { } label)
                {
                    labelled.Add(label);
                }
                else
                {
                    skipped++;
                }
            }

            rows += batch.Batch.RowCount;
            await writer.WriteAsync(labelled, cancellationToken);
        }

        return (rows, skipped);
    }

    private async Task<(long Rows, long Skipped)> ReadQueryAsync(LabelIngestRequest request, LabelWriter writer, CancellationToken cancellationToken)
    {
        var name = request.InputSource!;
        NpgsqlConnection connection;
        NpgsqlTransaction transaction;
        try
        {
            (connection, transaction) = await sources.OpenReadOnlyAsync(name, cancellationToken);
        }
        catch (UnknownSourceException ex)
        {
            throw new LabelIngestException(ex.Message, ex);
        }
        catch (NpgsqlException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LabelIngestException($"Source '{name}' cannot be reached: {ex.Message}", ex);
        }

        await using var _ = connection;
        await using var __ = transaction;
        long rows = 0, skipped = 0;
        try
        {
            await using var query = new NpgsqlCommand(request.InputSql, connection, transaction);
            await using var reader = await query.ExecuteReaderAsync(cancellationToken);
            var names = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
            var ordinals = Wanted(request).Select(column => names.IndexOf(column) is var i and >= 0 ? i : throw new LabelIngestException(
                $"The query on source '{name}' returns no column '{column}' (columns: {string.Join(", ", names)}).")).ToArray();
            var batch = new List<LabelRow>(BatchRows);
            while (await reader.ReadAsync(cancellationToken))
            {
                rows++;
                var at = ordinals.Length > 2 && !reader.IsDBNull(ordinals[2]) ? reader.GetFieldValue<DateTimeOffset>(ordinals[2]) : (DateTimeOffset?)null;
                if (ToRow(reader.GetValue(ordinals[0]), reader.GetValue(ordinals[1]), at) is { } label)
                {
                    batch.Add(label);
                }
                else
                {
                    skipped++;
                }

                if (batch.Count == BatchRows)
                {
                    await writer.WriteAsync(batch, cancellationToken);
                    batch.Clear();
                }
            }

            await writer.WriteAsync(batch, cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState is not ("57014" or "57P01"))
        {
            // The user's query failed (syntax, permissions, a write refused by the read-only transaction): their error, not ours.
            throw new LabelIngestException($"The query on source '{name}' failed: {ex.MessageText}", ex);
        }
        catch (InvalidCastException ex)
        {
            throw new LabelIngestException($"Column '{request.LabelledAtColumn}' of the query must be a timestamp: {ex.Message}", ex);
        }

        return (rows, skipped);
    }

    private static List<string> Wanted(LabelIngestRequest request) =>
        request.LabelledAtColumn is { Length: > 0 } at ? [request.KeyColumn, request.LabelColumn, at] : [request.KeyColumn, request.LabelColumn];

    /// <summary>A label row, or null when the key or the label is missing.</summary>
    internal static LabelRow? ToRow(object? key, object? label, DateTimeOffset? labelledAt)
    {
        var keyText = Text(key).Text;
        var (labelText, number) = Text(label);
        return keyText is null || labelText is null ? null : new LabelRow(keyText, labelText, number, labelledAt);
    }

    /// <summary>
    /// A value as the text PostgreSQL's <c>::text</c> gives (so keys match the results tables' key column cast to text),
    /// and as a number when it is one. Booleans are 1 and 0, the way classifiers name their classes.
    /// </summary>
    internal static (string? Text, double? Number) Text(object? value) => value switch
    {
        null or DBNull => (null, null),
        bool b => (b ? "1" : "0", b ? 1 : 0),
        float f when float.IsFinite(f) => (f.ToString("R", CultureInfo.InvariantCulture), f),
        double d when double.IsFinite(d) => (d.ToString("R", CultureInfo.InvariantCulture), d),
        float or double => (null, null),
        decimal m => (m.ToString(CultureInfo.InvariantCulture), (double)m),
        sbyte or byte or short or ushort or int or uint or long or ulong => (Convert.ToString(value, CultureInfo.InvariantCulture), Convert.ToDouble(value, CultureInfo.InvariantCulture)),
        string s => (s, double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && double.IsFinite(n) ? n : null),
        DateTime t => (t.ToString("O", CultureInfo.InvariantCulture), null),
        _ => (Convert.ToString(value, CultureInfo.InvariantCulture), null),
    };
}
