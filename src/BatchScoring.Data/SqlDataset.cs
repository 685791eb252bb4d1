using System.Data;
using System.Globalization;
using BatchScoring.Scoring.Data;
using Npgsql;
using Npgsql.PostgresTypes;

namespace BatchScoring.Data;

/// <summary>
/// How a job reads a SQL input, stored in its plan: the source name, the query, and the key boundaries. Chunk i reads
/// the rows whose key is in (<see cref="Bounds"/>[i-1], <see cref="Bounds"/>[i]] (chunk 0 has no lower bound), so every
/// worker re-reads the same rows and every row of the query belongs to exactly one chunk, also with duplicate keys.
/// </summary>
/// <param name="KeyType">The SQL type the bounds are compared as (one of <see cref="SqlDataset.KeyTypes"/>).</param>
/// <param name="Bounds">Key values as PostgreSQL prints them (<c>key::text</c>), ascending.</param>
public sealed record SqlInputPlan(string Source, string Query, string KeyColumn, string KeyType, IReadOnlyList<string> Bounds);

/// <summary>The planned chunks of a SQL input (see <see cref="SqlInputPlan"/>).</summary>
public sealed record SqlDatasetPlan(IReadOnlyList<SourceColumn> Columns, SqlInputPlan Input, IReadOnlyList<ChunkSpec> Chunks, long TotalRows);

/// <summary>
/// SQL input: rows of a single SELECT on a named PostgreSQL source, read in a READ ONLY transaction. Planning reads the
/// key of every N-th row (ordered by key) as chunk boundaries; a chunk reads
/// <c>WHERE key &gt; lo AND key &lt;= hi ORDER BY key</c> over the wrapped query, streaming rows (memory bounded by the chunk).
/// </summary>
public static class SqlDataset
{
    public const string PathPrefix = "sql:";

    /// <summary>Rows read at submit to check list widths against the model's input shape.</summary>
    public const int SampleRows = 100;

    /// <summary>PostgreSQL types a key may have, by type name, with the type its bounds are cast to (never user text).</summary>
    public static readonly IReadOnlyDictionary<string, string> KeyTypes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["int2"] = "bigint", ["int4"] = "bigint", ["int8"] = "bigint", ["numeric"] = "numeric",
        ["text"] = "text", ["varchar"] = "text", ["bpchar"] = "bpchar", ["name"] = "name", ["uuid"] = "uuid",
        ["date"] = "date", ["timestamp"] = "timestamp", ["timestamptz"] = "timestamptz",
    };

    /// <summary>
    /// A cheap check before the server sees the query: one statement that starts with SELECT or WITH (a trailing
    /// semicolon is dropped). The server then refuses anything else: the query is a subquery, sent as one prepared
    /// statement (one command only), in a READ ONLY transaction. Returns the query without the trailing semicolon.
    /// </summary>
    public static string EnsureSingleSelect(string query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var trimmed = query.Trim().TrimEnd(';').TrimEnd();
        var start = SkipComments(trimmed);
        var word = new string(trimmed[start..].TakeWhile(char.IsLetter).ToArray());
        if (!word.Equals("select", StringComparison.OrdinalIgnoreCase) && !word.Equals("with", StringComparison.OrdinalIgnoreCase))
        {
            throw new DatasetException(
                $"InputSql must be a single SELECT (or WITH ... SELECT) statement; it starts with '{(word.Length == 0 ? trimmed[start..Math.Min(trimmed.Length, start + 10)] : word)}'.");
        }

        return trimmed;
    }

    /// <summary>The query's columns that can be read (others, such as json or bytea, are left out), without running it.</summary>
    public static async Task<IReadOnlyList<SourceColumn>> DescribeAsync(NpgsqlDataSource source, string query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        return await InReadOnlyTransactionAsync(source, async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand($"SELECT * FROM (\n{query}\n) AS q LIMIT $1", connection, transaction);
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 0 });
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SchemaOnly, cancellationToken);
            var columns = new List<SourceColumn>();
            for (var i = 0; i < reader.FieldCount; i++)
            {
                if (KindOf(TypeName(reader.GetPostgresType(i))) is { } kind)
                {
                    columns.Add(new SourceColumn(reader.GetName(i), kind, true));
                }
            }

            return (IReadOnlyList<SourceColumn>)columns;
        }, cancellationToken);
    }

    /// <summary>The PostgreSQL type name of the query's column <paramref name="column"/> (domains resolved to their base type).</summary>
    public static async Task<string?> ColumnTypeAsync(NpgsqlDataSource source, string query, string column, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        return await InReadOnlyTransactionAsync(source, async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand($"SELECT q.{Quote(column)} FROM (\n{query}\n) AS q LIMIT $1", connection, transaction);
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 0 });
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SchemaOnly, cancellationToken);
            return TypeName(reader.GetPostgresType(0));
        }, cancellationToken);
    }

    /// <summary>Plans chunks of about <paramref name="chunkRows"/> rows by key ranges; throws <see cref="DatasetException"/> for a null or unorderable key.</summary>
    public static async Task<SqlDatasetPlan> PlanAsync(
        NpgsqlDataSource source, string sourceName, string query, IReadOnlyList<SourceColumn> columns, string keyColumn, int chunkRows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        var keyTypeName = await ColumnTypeAsync(source, query, keyColumn, cancellationToken);
        if (keyTypeName is null || !KeyTypes.TryGetValue(keyTypeName, out var keyType))
        {
            throw new DatasetException(
                $"Key column '{keyColumn}' of the query is of type {keyTypeName ?? "unknown"}; a SQL input is split by key ranges, so its key must be an integer, numeric, text, uuid, date or timestamp column.");
        }

        var key = Quote(keyColumn);
        var (nulls, bounds, counts) = await InReadOnlyTransactionAsync(source, async (connection, transaction) =>
        {
            long nullKeys;
            // Every command here has a positional parameter ($1): Npgsql then sends the text as it is, one prepared
            // statement, which PostgreSQL refuses to hold a second command (no splitting at a semicolon in the query).
            await using (var count = new NpgsqlCommand($"SELECT count(*) FROM (\n{query}\n) AS q WHERE q.{key} IS NULL AND $1", connection, transaction))
            {
                count.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = true });
                nullKeys = (long)(await count.ExecuteScalarAsync(cancellationToken))!;
            }

            // cum counts the rows up to and including every row with the same key (the window's default frame), so a
            // chunk's size is the difference of two boundaries' cum, duplicates of a boundary key included.
            var boundaries = new List<string>();
            var cumulative = new List<long>();
            await using var command = new NpgsqlCommand(
                $"""
                SELECT s.k::text, s.cum FROM (
                    SELECT q.{key} AS k, row_number() OVER (ORDER BY q.{key}) AS rn, count(*) OVER (ORDER BY q.{key}) AS cum, count(*) OVER () AS total
                    FROM (
                {query}
                    ) AS q
                    WHERE q.{key} IS NOT NULL
                ) AS s
                WHERE s.rn % $1 = 0 OR s.rn = s.total
                ORDER BY s.rn
                """,
                connection,
                transaction);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = chunkRows });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var bound = reader.GetString(0);
                var cum = reader.GetInt64(1);
                if (cumulative.Count > 0 && cumulative[^1] == cum)
                {
                    continue; // the same key again (a run of duplicates longer than a chunk): its rows are in the chunk already
                }

                boundaries.Add(bound);
                cumulative.Add(cum);
                if (boundaries.Count > Dataset.MaxChunks)
                {
                    throw new DatasetException($"The query would make more than {Dataset.MaxChunks:N0} chunks; use larger chunks (ChunkRows).");
                }
            }

            return (nullKeys, boundaries, cumulative);
        }, cancellationToken);

        if (nulls > 0)
        {
            throw new DatasetException(
                $"Key column '{keyColumn}' is null in {nulls:N0} rows of the query; a SQL input is split by key ranges, so every row needs a key (filter them out with WHERE {keyColumn} IS NOT NULL).");
        }

        var path = PathPrefix + sourceName;
        var chunks = new List<ChunkSpec>(bounds.Count);
        long previous = 0;
        for (var i = 0; i < bounds.Count; i++)
        {
            chunks.Add(new ChunkSpec(i, path, null, previous, counts[i] - previous));
            previous = counts[i];
        }

        return new SqlDatasetPlan(columns, new SqlInputPlan(sourceName, query, keyColumn, keyType, bounds), chunks, previous);
    }

    /// <summary>Reads the first rows (any order) of the given columns: enough to see what their values look like.</summary>
    public static async Task<ColumnBatch> SampleAsync(NpgsqlDataSource source, string query, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(columns);
        return await InReadOnlyTransactionAsync(source, async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(
                $"SELECT {string.Join(", ", columns.Select(c => "q." + Quote(c.Name)))} FROM (\n{query}\n) AS q LIMIT $1", connection, transaction);
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = SampleRows });
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            return (await ReadRowsAsync(reader, columns, SampleRows, cancellationToken)).Batch;
        }, cancellationToken);
    }

    /// <summary>Reads one planned chunk: the rows of its key range, ordered by key.</summary>
    public static async Task<SourceBatch> ReadChunkAsync(
        NpgsqlDataSource source, SqlInputPlan input, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(columns);
        if (chunk.Index < 0 || chunk.Index >= input.Bounds.Count)
        {
            throw new DatasetException($"Chunk {chunk.Index} is not one of the {input.Bounds.Count} key ranges planned for the query.");
        }

        if (!KeyTypes.Values.Contains(input.KeyType, StringComparer.Ordinal))
        {
            throw new DatasetException($"The job's plan names key type '{input.KeyType}', which a SQL input cannot use.");
        }

        var key = Quote(input.KeyColumn);
        var cast = input.KeyType;
        return await InReadOnlyTransactionAsync(source, async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(
                $"""
                SELECT {string.Join(", ", columns.Select(c => "q." + Quote(c.Name)))}
                FROM (
                {input.Query}
                ) AS q
                WHERE ($1::text IS NULL OR q.{key} > $1::{cast}) AND q.{key} <= $2::{cast}
                ORDER BY q.{key}
                """,
                connection,
                transaction);
            command.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = chunk.Index == 0 ? null : input.Bounds[chunk.Index - 1], NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = input.Bounds[chunk.Index], NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            var (batch, issues) = await ReadRowsAsync(reader, columns, int.MaxValue, cancellationToken);
            return new SourceBatch(batch, chunk.RowStart, issues);
        }, cancellationToken);
    }

    /// <summary>An identifier for SQL text, double-quoted (names come from the query's own columns).</summary>
    public static string Quote(string identifier)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a REPEATABLE READ, READ ONLY transaction (one snapshot; any write is refused by
    /// the server), then rolls back: nothing a query does can remain.
    /// </summary>
    private static async Task<T> InReadOnlyTransactionAsync<T>(
        NpgsqlDataSource source, Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection, transaction))
        {
            await readOnly.ExecuteNonQueryAsync(cancellationToken);
        }

        var result = await work(connection, transaction);
        await transaction.RollbackAsync(cancellationToken);
        return result;
    }

    private static async Task<(ColumnBatch Batch, IReadOnlyList<RowIssue> Issues)> ReadRowsAsync(
        NpgsqlDataReader reader, IReadOnlyList<SourceColumn> columns, int maxRows, CancellationToken cancellationToken)
    {
        var builders = columns.Select(c => new ColumnBuilder(c)).ToArray();
        var issues = new List<RowIssue>();
        var row = 0;
        while (row < maxRows && await reader.ReadAsync(cancellationToken))
        {
            for (var i = 0; i < builders.Length; i++)
            {
                if (await reader.IsDBNullAsync(i, cancellationToken))
                {
                    builders[i].AddNull();
                    continue;
                }

                try
                {
                    builders[i].Add(await reader.GetFieldValueAsync<object>(i, cancellationToken));
                }
                catch (Exception ex) when (ex is InvalidCastException or FormatException or OverflowException)
                {
                    builders[i].AddNull();
                    issues.Add(new RowIssue(row, columns[i].Name, $"value of column '{columns[i].Name}' cannot be read as {columns[i].Kind}"));
                }
            }

            row++;
        }

        return (new ColumnBatch(builders.Select(b => b.Build()).ToArray()), issues);
    }

    private static string? TypeName(PostgresType type) => type switch
    {
        PostgresDomainType domain => TypeName(domain.BaseType),
        PostgresArrayType array => TypeName(array.Element) is { } element ? "_" + element : null,
        _ => type.InternalName,
    };

    private static ColumnKind? KindOf(string? typeName) => typeName switch
    {
        "int2" or "int4" => ColumnKind.Int32,
        "int8" => ColumnKind.Int64,
        "float4" => ColumnKind.Float32,
        "float8" or "numeric" => ColumnKind.Float64,
        "bool" => ColumnKind.Boolean,
        "text" or "varchar" or "bpchar" or "name" or "uuid" => ColumnKind.String,
        "date" or "timestamp" or "timestamptz" => ColumnKind.Timestamp,
        "_float4" or "_float8" or "_numeric" or "_int2" or "_int4" or "_int8" => ColumnKind.Float32List,
        _ => null,
    };

    private static int SkipComments(string text)
    {
        var i = 0;
        while (i < text.Length)
        {
            if (char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            else if (text.AsSpan(i).StartsWith("--"))
            {
                var end = text.IndexOf('\n', i);
                i = end < 0 ? text.Length : end + 1;
            }
            else if (text.AsSpan(i).StartsWith("/*"))
            {
                var end = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? text.Length : end + 2;
            }
            else
            {
                break;
            }
        }

        return i;
    }

    /// <summary>Collects one column's values row by row, converting what Npgsql returns to the column's kind.</summary>
    private sealed class ColumnBuilder(SourceColumn column)
    {
        private readonly List<object?> _values = [];
        private List<bool>? _nulls;

        public void AddNull()
        {
            _nulls ??= Enumerable.Repeat(false, _values.Count).ToList();
            _values.Add(null);
            _nulls.Add(true);
        }

        public void Add(object value)
        {
            _values.Add(Convert(value));
            _nulls?.Add(false);
        }

        public BatchColumn Build()
        {
            var n = _values.Count;
            Array values = column.Kind switch
            {
                ColumnKind.Float32 => _values.Select(v => v is float f ? f : 0f).ToArray(),
                ColumnKind.Float64 => _values.Select(v => v is double d ? d : 0d).ToArray(),
                ColumnKind.Int32 => _values.Select(v => v is int x ? x : 0).ToArray(),
                ColumnKind.Int64 => _values.Select(v => v is long x ? x : 0L).ToArray(),
                ColumnKind.Boolean => _values.Select(v => v is true).ToArray(),
                ColumnKind.String => _values.Select(v => v as string).ToArray(),
                ColumnKind.Timestamp => _values.Select(v => v is DateTime t ? t : default).ToArray(),
                ColumnKind.Float32List => _values.Select(v => v as float[] ?? []).ToArray(),
                _ => throw new DatasetException($"Column '{column.Name}' has an unsupported kind {column.Kind}."),
            };
            return new BatchColumn(column.Name, column.Kind, values, _nulls is null || n == 0 ? null : [.. _nulls]);
        }

        private object Convert(object value) => column.Kind switch
        {
            ColumnKind.Float32 => System.Convert.ToSingle(value, CultureInfo.InvariantCulture),
            ColumnKind.Float64 => System.Convert.ToDouble(value, CultureInfo.InvariantCulture),
            ColumnKind.Int32 => System.Convert.ToInt32(value, CultureInfo.InvariantCulture),
            ColumnKind.Int64 => System.Convert.ToInt64(value, CultureInfo.InvariantCulture),
            ColumnKind.Boolean => (bool)value,
            ColumnKind.String => value is Guid g ? g.ToString("D") : System.Convert.ToString(value, CultureInfo.InvariantCulture)!,
            ColumnKind.Timestamp => value switch
            {
                DateTime t => t.Kind == DateTimeKind.Utc ? t : DateTime.SpecifyKind(t, DateTimeKind.Utc),
                DateOnly d => d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc),
                _ => throw new InvalidCastException(),
            },
            // Arrays of any rank are flattened row-major (a real[3][32][32] is an image of 3·32·32 values).
            ColumnKind.Float32List => value is Array array
                ? array.Cast<object?>().Select(e => e is null ? float.NaN : System.Convert.ToSingle(e, CultureInfo.InvariantCulture)).ToArray()
                : throw new InvalidCastException(),
            _ => throw new InvalidCastException(),
        };
    }
}
