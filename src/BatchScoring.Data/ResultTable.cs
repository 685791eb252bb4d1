using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using BatchScoring.Scoring.Data;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>
/// A typed result table: the key column, the fixed columns (<c>job_id</c>, <c>request_id</c>,
/// <c>model_name</c>, <c>model_version</c>, <c>scored_at</c>), passthrough columns and one column per
/// model output. Every name is validated against <c>^[a-z_][a-z0-9_]{0,62}$</c> and always quoted, so
/// no caller text reaches SQL unchecked. Rows are written with binary COPY (<see cref="CopyAsync"/>).
/// </summary>
public sealed partial class ResultTable
{
    public const string DefaultSchema = "scoring";

    public const string ReaderRole = "scoring_reader";

    /// <summary>Columns every result table has, in table order after the key.</summary>
    public static IReadOnlyList<string> FixedColumns { get; } = ["job_id", "request_id", "model_name", "model_version", "scored_at"];

    private static readonly (string Name, string Type, bool NotNull)[] FixedColumnTypes =
    [
        ("job_id", "uuid", false),
        ("request_id", "text", false),
        ("model_name", "text", true),
        ("model_version", "integer", true),
        ("scored_at", "timestamp with time zone", true),
    ];

    // Defaults for rows written by hand (the service sends every fixed column in its COPY rows). Filling the
    // columns from these per-row current_setting() calls, as COPY once did, cost PostgreSQL about twice the COPY time
    // of sending the values (docs/chunks.md, "Lineage").
    private static readonly Dictionary<string, string> FixedColumnDefaults = new(StringComparer.Ordinal)
    {
        ["job_id"] = "nullif(current_setting('batchscoring.job_id', true), '')::uuid",
        ["request_id"] = "nullif(current_setting('batchscoring.request_id', true), '')",
        ["model_name"] = "nullif(current_setting('batchscoring.model_name', true), '')",
        ["model_version"] = "nullif(current_setting('batchscoring.model_version', true), '')::integer",
        ["scored_at"] = "coalesce(nullif(current_setting('batchscoring.scored_at', true), '')::timestamptz, now())",
    };

    private readonly string _copySql;

    private ResultTable(string schema, string name, ResultColumn key, IReadOnlyList<ResultColumn> passthrough, IReadOnlyList<ResultColumn> outputs)
    {
        Schema = schema;
        Name = name;
        Key = key;
        Passthrough = passthrough;
        Outputs = outputs;
        DataColumns = [key, .. passthrough, .. outputs];
        var columns = new StringBuilder();
        columns.Append(Quote(key.Name));

        foreach (var column in passthrough.Concat(outputs))
        {
            columns.Append(", ").Append(Quote(column.Name));
        }

        foreach (var fixedColumn in FixedColumnTypes)
        {
            columns.Append(", ").Append(Quote(fixedColumn.Name));
        }

        _copySql = $"COPY {QuotedName} ({columns}) FROM STDIN (FORMAT BINARY)";
    }

    public string Schema { get; }

    public string Name { get; }

    /// <summary><c>schema.table</c>, unquoted (names are validated lower-case identifiers).</summary>
    public string QualifiedName => $"{Schema}.{Name}";

    /// <summary><c>"schema"."table"</c>.</summary>
    public string QuotedName => $"{Quote(Schema)}.{Quote(Name)}";

    public ResultColumn Key { get; }

    public IReadOnlyList<ResultColumn> Passthrough { get; }

    public IReadOnlyList<ResultColumn> Outputs { get; }

    /// <summary>Key, passthrough and output columns (the ones filled from a <see cref="ColumnBatch"/>).</summary>
    public IReadOnlyList<ResultColumn> DataColumns { get; }

    /// <summary>
    /// Defines a result table. <paramref name="qualifiedName"/> is <c>schema.table</c> or <c>table</c>
    /// (schema <c>scoring</c>). Throws <see cref="ArgumentException"/> naming the offending name when a
    /// name is not a valid lower-case identifier, collides with a fixed column, or repeats.
    /// </summary>
    public static ResultTable Define(string qualifiedName, ResultColumn key, IReadOnlyList<ResultColumn> passthrough, IReadOnlyList<ResultColumn> outputs)
    {
        ArgumentNullException.ThrowIfNull(qualifiedName);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(passthrough);
        ArgumentNullException.ThrowIfNull(outputs);

        var (schema, table) = ParseQualifiedName(qualifiedName);
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var fixedColumn in FixedColumns)
        {
            seen[fixedColumn] = "a fixed column";
        }

        Check(key, "key column");
        foreach (var column in passthrough)
        {
            Check(column, "passthrough column");
        }

        foreach (var column in outputs)
        {
            Check(column, "output column");
        }

        return new ResultTable(schema, table, key, passthrough.ToArray(), outputs.ToArray());

        void Check(ResultColumn column, string role)
        {
            ArgumentNullException.ThrowIfNull(column);
            ValidateIdentifier(column.Name, role);
            _ = ResultColumn.PostgresType(column.Kind);
            if (!seen.TryAdd(column.Name, role))
            {
                throw new ArgumentException(
                    $"Result table {schema}.{table}: {role} \"{column.Name}\" collides with {seen[column.Name]} of the same name; rename it (e.g. with a prefix).",
                    nameof(qualifiedName));
            }
        }
    }

    /// <summary>Splits and validates <c>schema.table</c> or <c>table</c>.</summary>
    public static (string Schema, string Table) ParseQualifiedName(string qualifiedName)
    {
        ArgumentNullException.ThrowIfNull(qualifiedName);
        var parts = qualifiedName.Split('.');
        if (parts.Length > 2)
        {
            throw new ArgumentException(
                $"Result table name \"{qualifiedName}\" is invalid: use 'table' or 'schema.table' (at most one dot).",
                nameof(qualifiedName));
        }

        var schema = parts.Length == 2 ? parts[0] : DefaultSchema;
        var table = parts[^1];
        ValidateIdentifier(schema, "schema name", qualifiedName);
        ValidateIdentifier(table, "table name", qualifiedName);
        return (schema, table);
    }

    /// <summary>True when <paramref name="name"/> is a valid lower-case identifier (1–63 chars).</summary>
    public static bool IsValidIdentifier(string? name) => name is not null && IdentifierPattern().IsMatch(name);

    /// <summary>
    /// Turns any text (e.g. an ONNX output name or a class label) into a valid column name: lower case,
    /// other characters replaced by '_', a leading '_' when it starts with a digit, at most 63 chars.
    /// </summary>
    public static string NormalizeColumnName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var builder = new StringBuilder(name.Length + 1);
        foreach (var c in name.ToLowerInvariant())
        {
            builder.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' ? c : '_');
        }

        if (builder[0] is >= '0' and <= '9')
        {
            builder.Insert(0, '_');
        }

        return builder.Length > 63 ? builder.ToString(0, 63) : builder.ToString();
    }

    /// <summary>Double-quotes a validated identifier.</summary>
    internal static string Quote(string identifier)
    {
        ValidateIdentifier(identifier, "identifier");
        return "\"" + identifier + "\"";
    }

    private static void ValidateIdentifier(string name, string role, string? within = null)
    {
        if (IsValidIdentifier(name))
        {
            return;
        }

        var where = within is null ? "" : $" in \"{within}\"";
        throw new ArgumentException(
            $"Invalid {role} \"{name}\"{where}: names must match ^[a-z_][a-z0-9_]{{0,62}}$ (lower-case letters, digits and '_', not starting with a digit, at most 63 characters).",
            role.Contains("column", StringComparison.Ordinal) ? "columns" : "qualifiedName");
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdentifierPattern();

    /// <summary>The <c>CREATE TABLE</c> statement (also useful for <c>schemas/sql</c> documentation).</summary>
    public string CreateTableSql()
    {
        var sql = new StringBuilder();
        sql.Append("CREATE TABLE IF NOT EXISTS ").Append(QuotedName).Append(" (\n");
        sql.Append("    ").Append(Quote(Key.Name)).Append(' ').Append(Key.PostgresType()).Append(" NULL");
        foreach (var (name, type, notNull) in FixedColumnTypes)
        {
            sql.Append(",\n    ").Append(Quote(name)).Append(' ').Append(type).Append(notNull ? " NOT NULL" : " NULL")
                .Append(" DEFAULT ").Append(FixedColumnDefaults[name]);
        }

        foreach (var column in Passthrough.Concat(Outputs))
        {
            sql.Append(",\n    ").Append(Quote(column.Name)).Append(' ').Append(column.PostgresType()).Append(" NULL");
        }

        sql.Append("\n)");
        return sql.ToString();
    }

    /// <summary>
    /// Creates the schema, table and indexes (on <c>job_id</c> and on the key) when missing and grants
    /// SELECT to <c>scoring_reader</c>; when the table exists, checks that every needed column is there
    /// with a compatible type and throws <see cref="ResultTableMismatchException"/> otherwise.
    /// Safe to call concurrently from many workers (serialised by an advisory lock on the table name).
    /// </summary>
    public async Task EnsureCreatedAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        await using (var lockCommand = new NpgsqlCommand(
            """
            SELECT pg_advisory_xact_lock(hashtext('batchscoring.result_table'), hashtext($1))
            """,
            connection,
            tx))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QualifiedName });
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        bool schemaExists;
        bool tableExists;
        await using (var exists = new NpgsqlCommand(
            """
            SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
                   to_regclass($2) IS NOT NULL,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $3)
            """,
            connection,
            tx))
        {
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Schema });
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QuotedName });
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ReaderRole });
            await using var reader = await exists.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            schemaExists = reader.GetBoolean(0);
            tableExists = reader.GetBoolean(1);
            var readerRoleExists = reader.GetBoolean(2);
            await reader.CloseAsync();

            if (tableExists)
            {
                await VerifyColumnsAsync(connection, tx, ct);
                // Tables created before the defaults existed get them now. Only the missing ones: ALTER TABLE takes an
                // exclusive lock, so on every submit it would queue behind (and then block) a running job's COPYs.
                var defaults = new StringBuilder();
                foreach (var name in await LineageColumnsWithoutDefaultAsync(connection, tx, ct))
                {
                    defaults.Append("ALTER TABLE ").Append(QuotedName).Append(" ALTER COLUMN ").Append(Quote(name))
                        .Append(" SET DEFAULT ").Append(FixedColumnDefaults[name]).Append(";\n");
                }

                // Tables created before the succeeded-rows view existed get it now.
                if (!await ViewExistsAsync(connection, tx, ct))
                {
                    defaults.Append(CreateSucceededViewSql(readerRoleExists)).Append(CommentSql());
                }

                if (defaults.Length > 0)
                {
                    await using var alter = new NpgsqlCommand(defaults.ToString(), connection, tx);
                    await alter.ExecuteNonQueryAsync(ct);
                }

                await tx.CommitAsync(ct);
                return;
            }

            var ddl = new StringBuilder();
            if (!schemaExists)
            {
                ddl.Append("CREATE SCHEMA IF NOT EXISTS ").Append(Quote(Schema)).Append(";\n");
            }

            ddl.Append(CreateTableSql()).Append(";\n");
            // BRIN, not B-tree: a job's rows arrive together, so block ranges summarise them well, and the index costs
            // COPY almost nothing (a B-tree on job_id was a third of the COPY time; docs/chunks.md, "Lineage").
            ddl.Append("CREATE INDEX IF NOT EXISTS ").Append(Quote(IndexName("job_id_idx"))).Append(" ON ").Append(QuotedName).Append(" USING brin (\"job_id\");\n");
            ddl.Append("CREATE INDEX IF NOT EXISTS ").Append(Quote(IndexName("key_idx"))).Append(" ON ").Append(QuotedName).Append(" (").Append(Quote(Key.Name)).Append(");\n");
            if (readerRoleExists)
            {
                ddl.Append("GRANT USAGE ON SCHEMA ").Append(Quote(Schema)).Append(" TO ").Append(Quote(ReaderRole)).Append(";\n");
                ddl.Append("GRANT SELECT ON ").Append(QuotedName).Append(" TO ").Append(Quote(ReaderRole)).Append(";\n");
            }

            ddl.Append(CreateSucceededViewSql(readerRoleExists)).Append(CommentSql());

            await using var create = new NpgsqlCommand(ddl.ToString(), connection, tx);
            await create.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
    }

    /// <summary>
    /// <c>schema.table_succeeded</c>: the view analysts should query. A job's rows are committed chunk by chunk
    /// while it runs, so a job that later fails or is cancelled leaves rows in the table; the view keeps only rows
    /// of succeeded jobs and rows of score requests (which have a request id and no job).
    /// </summary>
    public string SucceededViewName => $"{Schema}.{SucceededViewStem()}";

    /// <summary><c>"schema"."table_succeeded"</c>.</summary>
    public string QuotedSucceededViewName => $"{Quote(Schema)}.{Quote(SucceededViewStem())}";

    /// <summary>The <c>CREATE VIEW</c> of <see cref="SucceededViewName"/> and its grant to the reader role.</summary>
    public string CreateSucceededViewSql(bool grantToReader)
    {
        var sql = new StringBuilder();
        sql.Append("CREATE OR REPLACE VIEW ").Append(QuotedSucceededViewName).Append(" AS\n")
            .Append("SELECT r.* FROM ").Append(QuotedName).Append(" r\n")
            .Append("WHERE r.\"request_id\" IS NOT NULL\n")
            .Append("   OR EXISTS (SELECT 1 FROM \"scoring\".\"jobs\" j WHERE j.\"id\" = r.\"job_id\" AND j.\"state\" = 'succeeded');\n");
        if (grantToReader)
        {
            sql.Append("GRANT SELECT ON ").Append(QuotedSucceededViewName).Append(" TO ").Append(Quote(ReaderRole)).Append(";\n");
        }

        return sql.ToString();
    }

    private static readonly Dictionary<string, string> FixedColumnComments = new(StringComparer.Ordinal)
    {
        ["job_id"] = "The scoring job that wrote the row (scoring.jobs.id); null for rows of score requests.",
        ["request_id"] = "The score request that wrote the row; null for rows of jobs.",
        ["model_name"] = "The model that scored the row.",
        ["model_version"] = "The model version that scored the row (scoring.model_versions).",
        ["scored_at"] = "When the row was scored (UTC).",
    };

    /// <summary><c>COMMENT ON</c> the table, the succeeded view and every column of both, for analysts' clients.</summary>
    public string CommentSql()
    {
        var sql = new StringBuilder();
        sql.Append("COMMENT ON TABLE ").Append(QuotedName).Append(" IS ")
            .Append(Literal($"Scoring results (batchscore). Also holds rows of running, failed and cancelled jobs: query {SucceededViewName} for results to use (docs/results.md)."))
            .Append(";\n");
        sql.Append("COMMENT ON VIEW ").Append(QuotedSucceededViewName).Append(" IS ")
            .Append(Literal($"The rows of {QualifiedName} that are results to use: rows of succeeded jobs (scoring.jobs.state) and of score requests."))
            .Append(";\n");
        var columns = new List<(string Name, string Comment)> { (Key.Name, "Key of the input row (the job's key column).") };
        columns.AddRange(FixedColumns.Select(name => (name, FixedColumnComments[name])));
        columns.AddRange(Passthrough.Select(c => (c.Name, "Input column copied unchanged (passthrough).")));
        columns.AddRange(Outputs.Select(c => (c.Name, $"Model output {c.Name} ({c.PostgresType()}).")));
        foreach (var relation in new[] { QuotedName, QuotedSucceededViewName })
        {
            foreach (var (name, comment) in columns)
            {
                sql.Append("COMMENT ON COLUMN ").Append(relation).Append('.').Append(Quote(name)).Append(" IS ").Append(Literal(comment)).Append(";\n");
            }
        }

        return sql.ToString();

        static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    private string SucceededViewStem() => IndexName("succeeded");

    private async Task<List<string>> LineageColumnsWithoutDefaultAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT attname FROM pg_catalog.pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND NOT atthasdef AND attname = ANY($2)
            """,
            connection,
            tx);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QuotedName });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. FixedColumnDefaults.Keys] });
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private async Task<bool> ViewExistsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection, tx);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QuotedSucceededViewName });
        return (bool)(await command.ExecuteScalarAsync(ct))!;
    }

    private string IndexName(string suffix)
    {
        var room = 63 - suffix.Length - 1;
        var stem = Name.Length > room ? Name[..room] : Name;
        return stem + "_" + suffix;
    }

    private async Task VerifyColumnsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var actual = new Dictionary<string, (string Type, bool NotNull, bool HasDefault)>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand(
            """
            SELECT a.attname::text,
                   a.atttypid::regtype::text,
                   a.attnotnull,
                   a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            """,
            connection,
            tx))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = QuotedName });
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                actual[reader.GetString(0)] = (reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3));
            }
        }

        var expected = new List<(string Name, string Type)> { (Key.Name, Key.PostgresType()) };
        expected.AddRange(FixedColumnTypes.Select(f => (f.Name, f.Type)));
        expected.AddRange(Passthrough.Concat(Outputs).Select(c => (c.Name, c.PostgresType())));

        foreach (var (name, type) in expected)
        {
            if (!actual.TryGetValue(name, out var found))
            {
                throw new ResultTableMismatchException(QualifiedName, name, type, null);
            }

            if (!IsCompatible(type, found.Type))
            {
                throw new ResultTableMismatchException(QualifiedName, name, type, found.Type);
            }
        }

        var written = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, found) in actual)
        {
            if (!written.Contains(name) && found.NotNull && !found.HasDefault)
            {
                throw new ResultTableMismatchException(
                    QualifiedName,
                    name,
                    "nullable or with a default (the scorer does not write this column)",
                    string.Create(CultureInfo.InvariantCulture, $"{found.Type} NOT NULL without a default"));
            }
        }
    }

    // Binary COPY needs the exact type; only text/varchar share a wire format.
    private static bool IsCompatible(string expected, string actual) =>
        string.Equals(expected, actual, StringComparison.Ordinal)
        || (expected == "text" && actual == "character varying");

    /// <summary>
    /// Binary COPY of every row of <paramref name="rows"/> (columns found by name: key, passthrough,
    /// outputs; null masks honoured) with the fixed columns from <paramref name="context"/>. Runs in the
    /// connection's current transaction, if any. Returns the number of rows written.
    /// </summary>
    public async Task<ulong> CopyAsync(NpgsqlConnection connection, ResultRowContext context, ColumnBatch rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentException.ThrowIfNullOrEmpty(context.ModelName);

        var writers = new ColumnWriter[DataColumns.Count];
        for (var i = 0; i < writers.Length; i++)
        {
            var column = DataColumns[i];
            var source = rows.Find(column.Name)
                ?? throw new ArgumentException(
                    $"Result table {QualifiedName} needs column \"{column.Name}\" ({column.Kind}) but the batch has only: {string.Join(", ", rows.Columns.Select(c => c.Name))}.",
                    nameof(rows));
            writers[i] = ColumnWriter.Create(source, column.Kind, QualifiedName);
        }

        if (rows.RowCount == 0)
        {
            return 0;
        }

        var encoders = new ColumnEncoder[DataColumns.Count];
        for (var i = 0; i < encoders.Length; i++)
        {
            if (ColumnEncoder.TryCreate(rows.Find(DataColumns[i].Name)!, DataColumns[i].Kind) is not { } encoder)
            {
                return await CopyRowsAsync(connection, writers, rows.RowCount, context, ct);
            }

            encoders[i] = encoder;
        }

        return await CopyEncodedRowsAsync(connection, encoders, rows.RowCount, context, ct);
    }

    /// <summary>The same rows as <see cref="CopyRowsAsync"/>, encoded here and sent through a raw binary COPY.</summary>
    private async Task<ulong> CopyEncodedRowsAsync(NpgsqlConnection connection, ColumnEncoder[] encoders, int count, ResultRowContext context, CancellationToken ct)
    {
        var encoder = new BinaryCopyEncoder();
        // The fixed columns are the same in every row: encoded once, in FixedColumnTypes order.
        encoder.WriteLineage(context);
        var lineage = encoder.Written.ToArray();
        encoder.Clear();
        encoder.WriteHeader();
        var stream = await connection.BeginRawBinaryCopyAsync(_copySql, ct);
        try
        {
            for (var row = 0; row < count; row++)
            {
                encoder.WriteFieldCount(encoders.Length + FixedColumnTypes.Length);
                foreach (var column in encoders)
                {
                    column.Write(encoder, row);
                }

                encoder.WriteBytes(lineage);
                if (encoder.Length >= BinaryCopyEncoder.FlushBytes)
                {
                    await stream.WriteAsync(encoder.Written, ct);
                    encoder.Clear();
                }
            }

            encoder.WriteTrailer();
            await stream.WriteAsync(encoder.Written, ct);
        }
        catch
        {
            // Without the cancel, disposing the stream would end the COPY as if every row had been sent.
            await QuietlyCancelAsync(stream);
            throw;
        }

        // Ends the COPY; PostgreSQL's errors (constraints, types) surface here.
        await stream.DisposeAsync();
        return (ulong)count;
    }

    private static async Task QuietlyCancelAsync(NpgsqlRawCopyStream stream)
    {
        try
        {
            await stream.CancelAsync();
            await stream.DisposeAsync();
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or OperationCanceledException or InvalidOperationException)
        {
            // The connection is already broken (its owner disposes it); the original error is the one to report.
        }
    }

    private async Task<ulong> CopyRowsAsync(NpgsqlConnection connection, ColumnWriter[] writers, int count, ResultRowContext context, CancellationToken ct)
    {
        var scoredAt = context.ScoredAt.UtcDateTime;
        await using var importer = await connection.BeginBinaryImportAsync(_copySql, ct);
        for (var row = 0; row < count; row++)
        {
            await importer.StartRowAsync(ct);
            for (var c = 0; c < writers.Length; c++)
            {
                await writers[c].WriteAsync(importer, row, ct);
            }

            // The fixed columns, in FixedColumnTypes order.
            if (context.JobId is { } jobId)
            {
                await importer.WriteAsync(jobId, NpgsqlDbType.Uuid, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            if (context.RequestId is { } requestId)
            {
                await importer.WriteAsync(requestId, NpgsqlDbType.Text, ct);
            }
            else
            {
                await importer.WriteNullAsync(ct);
            }

            await importer.WriteAsync(context.ModelName, NpgsqlDbType.Text, ct);
            await importer.WriteAsync(context.ModelVersion, NpgsqlDbType.Integer, ct);
            await importer.WriteAsync(scoredAt, NpgsqlDbType.TimestampTz, ct);
        }

        return await importer.CompleteAsync(ct);
    }
}
