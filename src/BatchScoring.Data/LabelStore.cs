using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>One label as stored: the row key and the label as text, the label as a number when it is one.</summary>
public readonly record struct LabelRow(string Key, string Label, double? LabelNumber, DateTimeOffset? LabelledAt);

/// <summary>What one ingest wrote: rows read, labels inserted (new keys) and updated (known keys), rows skipped.</summary>
public sealed record LabelWriteCounts(long Rows, long Inserted, long Updated, long Skipped);

/// <summary>SQL of <c>scoring.labels</c> (<c>schemas/sql/014_labels_and_performance.sql</c>).</summary>
public sealed class LabelStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Starts an ingest of labels of <paramref name="model"/>: one transaction, so a failed ingest leaves the labels as
    /// they were; each batch goes through a temporary staging table (binary COPY) and is upserted from it.
    /// </summary>
    public async Task<LabelWriter> BeginAsync(string model, string source, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var stage = new NpgsqlCommand(
                """
                CREATE TEMP TABLE label_stage (
                    seq bigint NOT NULL, key text NOT NULL, label text NOT NULL, label_number double precision, labelled_at timestamptz
                ) ON COMMIT DROP
                """,
                connection,
                transaction))
            {
                await stage.ExecuteNonQueryAsync(cancellationToken);
            }

            return new LabelWriter(connection, transaction, model, source);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Labels of a model (for tests and support): key → label.</summary>
    public async Task<long> CountAsync(string model, CancellationToken cancellationToken)
    {
        await using var count = dataSource.CreateCommand("SELECT count(*) FROM scoring.labels WHERE model_name = $1");
        count.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model });
        return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Models that have labels: what a scheduled performance run looks at.</summary>
    public async Task<IReadOnlyList<string>> LabelledModelsAsync(CancellationToken cancellationToken)
    {
        await using var select = dataSource.CreateCommand("SELECT DISTINCT model_name FROM scoring.labels ORDER BY 1");
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        var models = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            models.Add(reader.GetString(0));
        }

        return models;
    }
}

/// <summary>An open label ingest (see <see cref="LabelStore.BeginAsync"/>): write batches, then commit.</summary>
public sealed class LabelWriter : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly string _model;
    private readonly string _source;
    private long _seq;
    private long _inserted;
    private long _updated;

    internal LabelWriter(NpgsqlConnection connection, NpgsqlTransaction transaction, string model, string source)
    {
        _connection = connection;
        _transaction = transaction;
        _model = model;
        _source = source;
    }

    /// <summary>Stages one batch with binary COPY and upserts it; within a batch the last row of a key wins, as across batches.</summary>
    public async Task WriteAsync(IReadOnlyList<LabelRow> rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
        {
            return;
        }

        await using (var copy = await _connection.BeginBinaryImportAsync(
            "COPY label_stage (seq, key, label, label_number, labelled_at) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var row in rows)
            {
                await copy.StartRowAsync(cancellationToken);
                await copy.WriteAsync(_seq++, NpgsqlDbType.Bigint, cancellationToken);
                await copy.WriteAsync(row.Key, NpgsqlDbType.Text, cancellationToken);
                await copy.WriteAsync(row.Label, NpgsqlDbType.Text, cancellationToken);
                if (row.LabelNumber is { } number)
                {
                    await copy.WriteAsync(number, NpgsqlDbType.Double, cancellationToken);
                }
                else
                {
                    await copy.WriteNullAsync(cancellationToken);
                }

                if (row.LabelledAt is { } at)
                {
                    await copy.WriteAsync(at, NpgsqlDbType.TimestampTz, cancellationToken);
                }
                else
                {
                    await copy.WriteNullAsync(cancellationToken);
                }
            }

            await copy.CompleteAsync(cancellationToken);
        }

        // ON CONFLICT may touch a row once per statement: DISTINCT ON keeps the batch's last label of each key.
        // xmax = 0 tells a freshly inserted row from an updated one.
        await using var upsert = new NpgsqlCommand(
            """
            WITH written AS (
                INSERT INTO scoring.labels AS l (model_name, key, label, label_number, labelled_at, ingested_at, source)
                SELECT DISTINCT ON (key) $1, key, label, label_number, coalesce(labelled_at, now()), now(), $2
                FROM label_stage ORDER BY key, seq DESC
                ON CONFLICT (model_name, key) DO UPDATE
                SET label = excluded.label, label_number = excluded.label_number, labelled_at = excluded.labelled_at,
                    ingested_at = excluded.ingested_at, source = excluded.source
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written;
            """,
            _connection,
            _transaction);
        upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _model });
        upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _source });
        await using (var reader = await upsert.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            _inserted += reader.GetInt64(0);
            _updated += reader.GetInt64(1);
        }

        await using var truncate = new NpgsqlCommand("TRUNCATE label_stage", _connection, _transaction);
        await truncate.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Commits the ingest; returns labels inserted and updated (a key repeated in the input counts once per batch).</summary>
    public async Task<(long Inserted, long Updated)> CommitAsync(CancellationToken cancellationToken)
    {
        await _transaction.CommitAsync(cancellationToken);
        return (_inserted, _updated);
    }

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
