using System.Diagnostics;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using Npgsql;

namespace BatchScoring.IntegrationTests.Data;

public sealed class ResultTableTests(DataDatabase db) : IClassFixture<DataDatabase>
{
    private static readonly ResultColumn Key = new("customer_id", ColumnKind.String);

    [Theory]
    [InlineData("x; drop table jobs", "x; drop table jobs")]
    [InlineData("Upper", "Upper")]
    [InlineData("a.b.c", "at most one dot")]
    [InlineData("scoring.Results", "Results")]
    [InlineData("\"quoted\"", "\"quoted\"")]
    [InlineData("1results", "1results")]
    [InlineData("", "table name")]
    [InlineData("scoring.", "table name")]
    public void Invalid_table_names_are_rejected_with_the_name(string name, string expectedInMessage)
    {
        var error = Assert.Throws<ArgumentException>(() => ResultTable.Define(name, Key, [], [new("score", ColumnKind.Float32)]));
        Assert.Contains(expectedInMessage, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ensuring_an_existing_table_adds_only_missing_lineage_defaults_and_does_not_wait_for_a_running_copy()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("results_ensure_again", Key, [], [new("score", ColumnKind.Float32)]);
        await table.EnsureCreatedAsync(db.DataSource, ct);

        // A table from before the lineage defaults: one of them missing.
        await using (var drop = db.DataSource.CreateCommand($"ALTER TABLE {table.QuotedName} ALTER COLUMN model_name DROP DEFAULT"))
        {
            await drop.ExecuteNonQueryAsync(ct);
        }

        await table.EnsureCreatedAsync(db.DataSource, ct);
        Assert.Equal(0L, await MissingDefaultsAsync());

        // A job's COPY holds ROW EXCLUSIVE on the table for its chunk transaction: a submit into the same table must not
        // queue behind it (an ALTER TABLE would, and would then block the job's next COPYs).
        await using var copying = await db.DataSource.OpenConnectionAsync(ct);
        await using var copyTx = await copying.BeginTransactionAsync(ct);
        await using (var hold = new NpgsqlCommand($"LOCK TABLE {table.QuotedName} IN ROW EXCLUSIVE MODE", copying, copyTx))
        {
            await hold.ExecuteNonQueryAsync(ct);
        }

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(TimeSpan.FromSeconds(20));
        await table.EnsureCreatedAsync(db.DataSource, bounded.Token);
        await copyTx.RollbackAsync(ct);

        async Task<long> MissingDefaultsAsync()
        {
            await using var command = db.DataSource.CreateCommand(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname IN ('job_id', 'request_id', 'model_name', 'model_version', 'scored_at') AND NOT atthasdef");
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.QuotedName });
            return (long)(await command.ExecuteScalarAsync(ct))!;
        }
    }

    [Fact]
    public void Too_long_names_are_rejected()
    {
        var name = new string('a', 64);
        var error = Assert.Throws<ArgumentException>(() => ResultTable.Define(name, Key, [], []));
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
        Assert.Equal("scoring", ResultTable.Define(name[..63], Key, [], []).Schema);
    }

    [Theory]
    [InlineData("Score")]
    [InlineData("score\"; drop table x; --")]
    [InlineData("with space")]
    public void Invalid_column_names_are_rejected(string column)
    {
        var error = Assert.Throws<ArgumentException>(() => ResultTable.Define("results_x", Key, [], [new(column, ColumnKind.Float32)]));
        Assert.Contains(column, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("job_id")]
    [InlineData("model_version")]
    [InlineData("customer_id")]
    public void Columns_colliding_with_fixed_or_other_columns_are_rejected(string column)
    {
        var error = Assert.Throws<ArgumentException>(() => ResultTable.Define("results_x", Key, [new("region", ColumnKind.String)], [new(column, ColumnKind.Float32)]));
        Assert.Contains($"\"{column}\" collides", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_outputs_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => ResultTable.Define("results_x", Key, [], [new("p", ColumnKind.Float32), new("p", ColumnKind.Float64)]));
        Assert.Contains("\"p\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_are_parsed_with_the_default_schema()
    {
        var plain = ResultTable.Define("results_churn", Key, [], []);
        Assert.Equal("scoring.results_churn", plain.QualifiedName);
        Assert.Equal("\"scoring\".\"results_churn\"", plain.QuotedName);
        Assert.Equal("analytics.out_1", ResultTable.Define("analytics.out_1", Key, [], []).QualifiedName);
    }

    [Theory]
    [InlineData("probability(1)", "probability_1_")]
    [InlineData("Output-Label", "output_label")]
    [InlineData("0", "_0")]
    public void Column_names_can_be_normalised(string raw, string expected) =>
        Assert.Equal(expected, ResultTable.NormalizeColumnName(raw));

    [Fact]
    public async Task EnsureCreated_creates_table_indexes_and_grants_and_is_repeatable()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("analytics.results_ensure", Key, [new("region", ColumnKind.String)], [new("score", ColumnKind.Float32)]);

        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => table.EnsureCreatedAsync(db.DataSource, ct)));
        await table.EnsureCreatedAsync(db.DataSource, ct);

        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_indexes WHERE schemaname = 'analytics' AND tablename = 'results_ensure'", ct));
        Assert.True(await db.ScalarAsync<bool>("SELECT has_table_privilege('scoring_reader', 'analytics.results_ensure', 'SELECT')", ct));
        Assert.True(await db.ScalarAsync<bool>("SELECT has_schema_privilege('scoring_reader', 'analytics', 'USAGE')", ct));
    }

    [Fact]
    public async Task EnsureCreated_on_an_incompatible_table_names_the_column_and_types()
    {
        var ct = TestContext.Current.CancellationToken;
        await db.ExecuteAsync(
            """
            CREATE TABLE scoring.results_mismatch (
                customer_id text, job_id uuid, request_id text, model_name text, model_version int,
                scored_at timestamptz, score text)
            """,
            ct);
        var table = ResultTable.Define("results_mismatch", Key, [], [new("score", ColumnKind.Float32)]);

        var error = await Assert.ThrowsAsync<ResultTableMismatchException>(() => table.EnsureCreatedAsync(db.DataSource, ct));

        Assert.Equal("scoring.results_mismatch", error.Table);
        Assert.Equal("score", error.Column);
        Assert.Equal("real", error.Expected);
        Assert.Equal("text", error.Actual);
        Assert.Contains("scoring.results_mismatch", error.Message, StringComparison.Ordinal);
        Assert.Contains("\"score\"", error.Message, StringComparison.Ordinal);

        var missing = ResultTable.Define("results_mismatch", Key, [], [new("score_2", ColumnKind.Float32)]);
        var missingError = await Assert.ThrowsAsync<ResultTableMismatchException>(() => missing.EnsureCreatedAsync(db.DataSource, ct));
        Assert.Equal("score_2", missingError.Column);
        Assert.Null(missingError.Actual);
        Assert.Contains("missing", missingError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnsureCreated_rejects_an_extra_not_null_column_without_default()
    {
        var ct = TestContext.Current.CancellationToken;
        await db.ExecuteAsync(
            """
            CREATE TABLE scoring.results_extra (
                customer_id text, job_id uuid, request_id text, model_name text, model_version int,
                scored_at timestamptz, score real, batch_no int NOT NULL, note text NOT NULL DEFAULT '')
            """,
            ct);
        var table = ResultTable.Define("results_extra", Key, [], [new("score", ColumnKind.Float32)]);

        var error = await Assert.ThrowsAsync<ResultTableMismatchException>(() => table.EnsureCreatedAsync(db.DataSource, ct));

        Assert.Equal("batch_no", error.Column);
    }

    [Fact]
    public async Task Copy_round_trips_every_kind_with_nulls()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define(
            "results_all_kinds",
            new ResultColumn("id", ColumnKind.Int64),
            [new("region", ColumnKind.String), new("seen_at", ColumnKind.Timestamp), new("flag", ColumnKind.Boolean)],
            [new("f32", ColumnKind.Float32), new("f64", ColumnKind.Float64), new("i32", ColumnKind.Int32), new("vec", ColumnKind.Float32List), new("wide", ColumnKind.Int64)]);
        await table.EnsureCreatedAsync(db.DataSource, ct);

        var t0 = new DateTime(2024, 5, 6, 7, 8, 9, 123, DateTimeKind.Utc);
        var rows = new ColumnBatch(
        [
            new BatchColumn("id", ColumnKind.Int64, new long[] { 1, 2, 3 }),
            new BatchColumn("region", ColumnKind.String, new string?[] { "north", null, "s\u00fcd 'quoted' \"x\"" }),
            new BatchColumn("seen_at", ColumnKind.Timestamp, new[] { t0, t0.AddDays(1), default }, [false, false, true]),
            new BatchColumn("flag", ColumnKind.Boolean, new[] { true, false, true }, [false, true, false]),
            new BatchColumn("f32", ColumnKind.Float32, new[] { 1.5f, float.NaN, float.PositiveInfinity }),
            new BatchColumn("f64", ColumnKind.Float64, new[] { 0.1, 0, -2.5e300 }, [false, true, false]),
            new BatchColumn("i32", ColumnKind.Int32, new[] { int.MinValue, 0, int.MaxValue }),
            new BatchColumn("vec", ColumnKind.Float32List, new float[]?[] { [0.25f, 0.75f], null, [] }),
            new BatchColumn("wide", ColumnKind.Int32, new[] { 7, 8, 9 }, [false, false, true]), // Int32 → bigint widening
            new BatchColumn("ignored", ColumnKind.Float32, new[] { 0f, 0f, 0f }),
        ]);
        var jobId = Guid.NewGuid();
        var scoredAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

        await using (var connection = await db.DataSource.OpenConnectionAsync(ct))
        {
            var written = await table.CopyAsync(connection, new ResultRowContext(jobId, null, "churn", 3, scoredAt), rows, ct);
            Assert.Equal(3UL, written);

            // The lineage comes from per-COPY settings; they must not outlive the COPY on this (pooled) connection.
            await using var leak = new NpgsqlCommand("INSERT INTO scoring.results_all_kinds (id) VALUES (99)", connection);
            var notNull = await Assert.ThrowsAsync<PostgresException>(() => leak.ExecuteNonQueryAsync(ct));
            Assert.Equal(PostgresErrorCodes.NotNullViolation, notNull.SqlState);
        }

        await using var command = db.DataSource.CreateCommand(
            """
            SELECT id, job_id, request_id, model_name, model_version, scored_at, region, seen_at, flag, f32, f64, i32, vec, wide
            FROM scoring.results_all_kinds ORDER BY id
            """);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var read = new List<object?[]>();
        while (await reader.ReadAsync(ct))
        {
            var values = new object?[reader.FieldCount];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            read.Add(values);
        }

        Assert.Equal(3, read.Count);
        Assert.All(read, r => Assert.Equal(jobId, r[1]));
        Assert.All(read, r => Assert.Null(r[2]));
        Assert.All(read, r => Assert.Equal("churn", r[3]));
        Assert.All(read, r => Assert.Equal(3, r[4]));
        Assert.All(read, r => Assert.Equal(scoredAt.UtcDateTime, r[5]));
        Assert.Equal(["north", null, "s\u00fcd 'quoted' \"x\""], read.Select(r => r[6]));
        Assert.Equal([t0, t0.AddDays(1), null], read.Select(r => r[7]));
        Assert.Equal([true, null, true], read.Select(r => r[8]));
        Assert.Equal(1.5f, read[0][9]);
        Assert.True(float.IsNaN((float)read[1][9]!));
        Assert.Equal(float.PositiveInfinity, read[2][9]);
        Assert.Equal([0.1, null, -2.5e300], read.Select(r => r[10]));
        Assert.Equal([int.MinValue, 0, int.MaxValue], read.Select(r => r[11]));
        Assert.Equal(new[] { 0.25f, 0.75f }, (float[])read[0][12]!);
        Assert.Null(read[1][12]);
        Assert.Empty((float[])read[2][12]!);
        Assert.Equal([7L, 8L, null], read.Select(r => r[13]));
    }

    [Fact]
    public async Task Copy_writes_the_same_values_as_npgsqls_typed_importer()
    {
        // CopyAsync encodes rows itself; Npgsql's typed importer is the reference for every kind and edge value.
        var ct = TestContext.Current.CancellationToken;
        ResultColumn[] passthrough = [new("region", ColumnKind.String), new("seen_at", ColumnKind.Timestamp), new("flag", ColumnKind.Boolean)];
        ResultColumn[] outputs =
        [
            new("f32", ColumnKind.Float32), new("f64", ColumnKind.Float64), new("i32", ColumnKind.Int32), new("i64", ColumnKind.Int64),
            new("wide", ColumnKind.Int64), new("f32_wide", ColumnKind.Float64), new("i32_wide", ColumnKind.Float64),
        ];
        var encoded = ResultTable.Define("results_encoded", new ResultColumn("id", ColumnKind.Int64), passthrough, outputs);
        var reference = ResultTable.Define("results_reference", new ResultColumn("id", ColumnKind.Int64), passthrough, outputs);
        await encoded.EnsureCreatedAsync(db.DataSource, ct);
        await reference.EnsureCreatedAsync(db.DataSource, ct);

        var t0 = new DateTime(2024, 5, 6, 7, 8, 9, 123, DateTimeKind.Utc).AddTicks(4567);
        DateTime[] stamps = [t0, new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(-15), DateTime.MinValue, DateTime.MaxValue, new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Unspecified).AddTicks(9), default, t0];
        var n = stamps.Length;
        var rows = new ColumnBatch(
        [
            new BatchColumn("id", ColumnKind.Int64, new long[] { 1, 2, 3, 4, 5, 6, long.MaxValue }),
            new BatchColumn("region", ColumnKind.String, new string?[] { "north", null, "", "s\u00fcd 'q' \"x\" \\ \t", "\U0001F600 \u4e2d\u6587", "x", new string('y', 70_000) }, [false, false, false, false, false, true, false]),
            new BatchColumn("seen_at", ColumnKind.Timestamp, stamps, [false, false, false, false, false, true, false]),
            new BatchColumn("flag", ColumnKind.Boolean, new[] { true, false, true, false, true, false, true }, [false, true, false, false, false, false, false]),
            new BatchColumn("f32", ColumnKind.Float32, new[] { 1.5f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue }),
            new BatchColumn("f64", ColumnKind.Float64, new[] { 0.1, 0, -2.5e300, double.NaN, double.Epsilon, -0.0, double.MinValue }, [false, true, false, false, false, false, false]),
            new BatchColumn("i32", ColumnKind.Int32, new[] { int.MinValue, 0, int.MaxValue, -1, 1, 42, 7 }),
            new BatchColumn("i64", ColumnKind.Int64, new[] { long.MinValue, 0, long.MaxValue, -1, 1, 42, 7 }, [false, false, false, false, false, false, true]),
            new BatchColumn("wide", ColumnKind.Int32, new[] { 7, 8, 9, int.MinValue, int.MaxValue, 0, -3 }, [false, false, true, false, false, false, false]),
            new BatchColumn("f32_wide", ColumnKind.Float32, new[] { 0.1f, float.NaN, 3e38f, -1e-38f, 0f, 1f, 2.5f }),
            new BatchColumn("i32_wide", ColumnKind.Int32, new[] { int.MinValue, 0, int.MaxValue, 1, 2, 3, 4 }),
        ]);
        Assert.Equal(n, rows.RowCount);
        foreach (var context in new[]
        {
            new ResultRowContext(Guid.NewGuid(), null, "churn", 3, new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(2)).AddTicks(12)),
            new ResultRowContext(null, "req-\u00e9-1", "m\u00f6del", int.MaxValue, DateTimeOffset.UnixEpoch),
        })
        {
            await using var connection = await db.DataSource.OpenConnectionAsync(ct);
            Assert.Equal((ulong)n, await encoded.CopyAsync(connection, context, rows, ct));
            await CopyWithTypedImporterAsync(connection, reference, context, rows, ct);
        }

        await using var compare = db.DataSource.CreateCommand(
            """
            SELECT (SELECT count(*) FROM scoring.results_encoded),
                   (SELECT count(*) FROM (SELECT * FROM scoring.results_encoded EXCEPT ALL SELECT * FROM scoring.results_reference) d),
                   (SELECT count(*) FROM (SELECT * FROM scoring.results_reference EXCEPT ALL SELECT * FROM scoring.results_encoded) d),
                   (SELECT count(*) FROM scoring.results_encoded WHERE seen_at = 'infinity' OR seen_at = '-infinity')
            """);
        await using var reader = await compare.ExecuteReaderAsync(ct);
        Assert.True(await reader.ReadAsync(ct));
        Assert.Equal(2L * n, reader.GetInt64(0));
        Assert.Equal(0L, reader.GetInt64(1));
        Assert.Equal(0L, reader.GetInt64(2));
        Assert.Equal(4L, reader.GetInt64(3));
    }

    [Fact]
    public async Task A_copy_that_fails_part_way_writes_no_row_and_leaves_the_connection_usable()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("results_failed_copy", new ResultColumn("id", ColumnKind.Int64), [new("region", ColumnKind.String)], [new("score", ColumnKind.Float32)]);
        await table.EnsureCreatedAsync(db.DataSource, ct);
        const int rowCount = 20_000; // several buffers are sent before the bad row is reached
        var regions = Enumerable.Range(0, rowCount).Select(i => $"region-{i}").ToArray();
        regions[^1] = "lone surrogate \ud800"; // cannot be encoded as UTF-8
        var rows = new ColumnBatch(
        [
            new BatchColumn("id", ColumnKind.Int64, Enumerable.Range(0, rowCount).Select(i => (long)i).ToArray()),
            new BatchColumn("region", ColumnKind.String, regions),
            new BatchColumn("score", ColumnKind.Float32, new float[rowCount]),
        ]);

        await using var connection = await db.DataSource.OpenConnectionAsync(ct);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => table.CopyAsync(connection, new ResultRowContext(Guid.NewGuid(), null, "churn", 1, DateTimeOffset.UtcNow), rows, ct));

        await using var count = new NpgsqlCommand("SELECT count(*) FROM scoring.results_failed_copy", connection);
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(ct))!);
    }

    /// <summary>The rows as Npgsql's typed binary importer writes them: the reference for <see cref="ResultTable.CopyAsync"/>.</summary>
    private static async Task CopyWithTypedImporterAsync(NpgsqlConnection connection, ResultTable table, ResultRowContext context, ColumnBatch rows, CancellationToken ct)
    {
        var columns = table.DataColumns.Select(c => c.Name).Concat(ResultTable.FixedColumns);
        await using var importer = await connection.BeginBinaryImportAsync(
            $"COPY {table.QuotedName} ({string.Join(", ", columns.Select(c => $"\"{c}\""))}) FROM STDIN (FORMAT BINARY)", ct);
        for (var row = 0; row < rows.RowCount; row++)
        {
            await importer.StartRowAsync(ct);
            foreach (var column in table.DataColumns)
            {
                var source = rows[column.Name];
                object? value = source.GetValue(row) switch
                {
                    int i when column.Kind == ColumnKind.Int64 => (long)i,
                    int i when column.Kind == ColumnKind.Float64 => (double)i,
                    float f when column.Kind == ColumnKind.Float64 => (double)f,
                    DateTime t => t.Kind == DateTimeKind.Utc ? t : DateTime.SpecifyKind(t, DateTimeKind.Utc),
                    var other => other,
                };
                await importer.WriteAsync(value ?? DBNull.Value, ct);
            }

            await importer.WriteAsync<object>(context.JobId is { } jobId ? jobId : DBNull.Value, ct);
            await importer.WriteAsync<object>(context.RequestId is { } requestId ? requestId : DBNull.Value, ct);
            await importer.WriteAsync(context.ModelName, ct);
            await importer.WriteAsync(context.ModelVersion, ct);
            await importer.WriteAsync(context.ScoredAt.UtcDateTime, ct);
        }

        await importer.CompleteAsync(ct);
    }

    [Fact]
    public async Task The_succeeded_view_keeps_request_rows_and_rows_of_succeeded_jobs_only()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("results_view", Key, [], [new("score", ColumnKind.Float32)]);
        // A table made before the view existed gets it on the next EnsureCreated.
        await db.ExecuteAsync(table.CreateTableSql(), ct);
        await table.EnsureCreatedAsync(db.DataSource, ct);
        Assert.Equal("scoring.results_view_succeeded", table.SucceededViewName);

        var states = new[] { "succeeded", "failed", "cancelled", "running" };
        var jobs = new Dictionary<string, Guid>();
        foreach (var state in states)
        {
            jobs[state] = Guid.NewGuid();
            await db.ExecuteAsync(
                $"""
                INSERT INTO scoring.jobs (id, state, model_name, model_version, model_sha256, input_uri, input_format, key_column, output_table, batch_size, chunk_size)
                VALUES ('{jobs[state]}', '{state}', 'churn', 1, 'x', 'in.parquet', 'parquet', 'customer_id', 'results_view', 100, 100)
                """,
                ct);
        }

        await using (var connection = await db.DataSource.OpenConnectionAsync(ct))
        {
            var rows = new ColumnBatch([new BatchColumn("customer_id", ColumnKind.String, new[] { "a", "b" }), new BatchColumn("score", ColumnKind.Float32, new[] { 1f, 2f })]);
            foreach (var state in states)
            {
                await table.CopyAsync(connection, new ResultRowContext(jobs[state], null, "churn", 1, DateTimeOffset.UtcNow), rows, ct);
            }

            await table.CopyAsync(connection, new ResultRowContext(null, "req-1", "churn", 1, DateTimeOffset.UtcNow), rows, ct);
        }

        Assert.Equal(10L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.results_view", ct));
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.results_view_succeeded", ct));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.results_view_succeeded WHERE request_id = 'req-1'", ct));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM scoring.results_view_succeeded WHERE job_id = $1", ct, jobs["succeeded"]));
        Assert.True(await db.ScalarAsync<bool>("SELECT has_table_privilege('scoring_reader', 'scoring.results_view_succeeded', 'SELECT')", ct));
    }

    [Fact]
    public async Task Every_table_view_and_column_of_a_migrated_database_and_a_results_table_has_a_comment()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fresh = NpgsqlDataSource.Create(await db.Server.CreateDatabaseAsync("comments", ct));
        await DatabaseMigrator.MigrateAsync(fresh, ct);
        var table = ResultTable.Define("results_commented", Key, [new("region", ColumnKind.String)], [new("score", ColumnKind.Float32)]);
        await table.EnsureCreatedAsync(fresh, ct);

        await using var command = fresh.CreateCommand(
            """
            SELECT c.relname
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'scoring' AND c.relkind IN ('r', 'p', 'v') AND obj_description(c.oid, 'pg_class') IS NULL
            UNION ALL
            SELECT c.relname || '.' || a.attname
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = 'scoring' AND c.relkind IN ('r', 'p', 'v') AND col_description(c.oid, a.attnum) IS NULL
            UNION ALL
            SELECT c.relname
            FROM pg_catalog.pg_class c
            WHERE c.relname LIKE 'qrtz\_%' AND c.relkind = 'r' AND pg_table_is_visible(c.oid)
              AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE 'Quartz.NET job store: %'
            ORDER BY 1
            """);
        var uncommented = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                uncommented.Add(reader.GetString(0));
            }
        }

        Assert.Empty(uncommented);
        // Quartz.NET's tables (migration 009, in the search path's first schema) each say they are its store.
        await using var quartz = fresh.CreateCommand(
            "SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relname LIKE 'qrtz\\_%' AND c.relkind = 'r' AND obj_description(c.oid, 'pg_class') LIKE 'Quartz.NET job store: %'");
        Assert.Equal(15L, await quartz.ExecuteScalarAsync(ct));
        await using var modelName = fresh.CreateCommand("SELECT col_description('scoring.results_commented_succeeded'::regclass, 4)");
        Assert.Equal("The model that scored the row.", await modelName.ExecuteScalarAsync(ct));
    }

    [Fact]
    public async Task Copy_reports_missing_and_mistyped_batch_columns()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("results_missing", Key, [], [new("score", ColumnKind.Float32)]);
        await table.EnsureCreatedAsync(db.DataSource, ct);
        await using var connection = await db.DataSource.OpenConnectionAsync(ct);
        var context = new ResultRowContext(null, "req-1", "churn", 1, DateTimeOffset.UtcNow);

        var missing = await Assert.ThrowsAsync<ArgumentException>(() => table.CopyAsync(
            connection, context, new ColumnBatch([new BatchColumn("customer_id", ColumnKind.String, new[] { "a" })]), ct));
        Assert.Contains("\"score\"", missing.Message, StringComparison.Ordinal);

        var mistyped = await Assert.ThrowsAsync<ArgumentException>(() => table.CopyAsync(
            connection,
            context,
            new ColumnBatch([new BatchColumn("customer_id", ColumnKind.String, new[] { "a" }), new BatchColumn("score", ColumnKind.Float64, new[] { 1.0 })]),
            ct));
        Assert.Contains("'score'", mistyped.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Copy_throughput_key_and_one_float_output()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = ResultTable.Define("results_throughput", new ResultColumn("id", ColumnKind.Int64), [], [new("score", ColumnKind.Float32)]);
        await table.EnsureCreatedAsync(db.DataSource, ct);
        const int rowCount = 200_000;
        var ids = new long[rowCount];
        var scores = new float[rowCount];
        for (var i = 0; i < rowCount; i++)
        {
            ids[i] = i;
            scores[i] = i * 0.001f;
        }

        var rows = new ColumnBatch([new BatchColumn("id", ColumnKind.Int64, ids), new BatchColumn("score", ColumnKind.Float32, scores)]);
        var context = new ResultRowContext(Guid.NewGuid(), null, "churn", 1, DateTimeOffset.UtcNow);
        await using var connection = await db.DataSource.OpenConnectionAsync(ct);
        await table.CopyAsync(connection, context, rows.Slice(0, 1000), ct); // warm-up

        var watch = Stopwatch.StartNew();
        var written = await table.CopyAsync(connection, context, rows, ct);
        watch.Stop();

        Assert.Equal((ulong)rowCount, written);
        var rate = rowCount / watch.Elapsed.TotalSeconds;
        TestContext.Current.TestOutputHelper?.WriteLine($"COPY {rowCount} rows (bigint key + real output + 5 fixed columns): {watch.Elapsed.TotalMilliseconds:F0} ms, {rate:F0} rows/s");
        Assert.True(rate > 10_000, $"COPY ran at only {rate:F0} rows/s");
    }
}
