using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

public sealed class DatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Timestamps_are_written_as_int64_microseconds_adjusted_to_utc_not_int96()
    {
        var path = Path.Combine(_dir, "ts.parquet");
        var stamp = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1_234_560);
        await using (var writer = await ParquetBatchWriter.CreateAsync(path, [new("ts", ColumnKind.Timestamp, false)], Ct))
        {
            await writer.WriteAsync(new ColumnBatch([new("ts", ColumnKind.Timestamp, new[] { stamp })]), Ct);
            await writer.CompleteAsync(Ct);
        }

        await using (var reader = await Parquet.ParquetReader.CreateAsync(path, cancellationToken: Ct))
        {
            var element = reader.Metadata!.Schema.Single(e => e.Name == "ts");
            Assert.Equal(Parquet.Meta.Type.INT64, element.Type);
            Assert.NotNull(element.LogicalType?.TIMESTAMP?.Unit.MICROS);
            Assert.True(element.LogicalType!.TIMESTAMP!.IsAdjustedToUTC);
        }

        var plan = await Dataset.PlanAsync(path, 100, Ct);
        var read = (await Dataset.ReadChunkAsync(plan.Format, plan.Chunks.Single(), plan.Columns, Ct)).Batch;
        Assert.Equal(stamp, read["ts"].As<DateTime>()[0]);
    }

    [Fact]
    public async Task Parquet_round_trip_keeps_every_kind_and_null()
    {
        var path = Path.Combine(_dir, "kinds.parquet");
        var columns = new SourceColumn[]
        {
            new("f32", ColumnKind.Float32, true), new("f64", ColumnKind.Float64, false), new("i32", ColumnKind.Int32, true),
            new("i64", ColumnKind.Int64, false), new("b", ColumnKind.Boolean, false), new("s", ColumnKind.String, true),
            new("ts", ColumnKind.Timestamp, false), new("v", ColumnKind.Float32List, true),
        };
        var stamp = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var batch = new ColumnBatch(
        [
            new("f32", ColumnKind.Float32, new[] { 1.5f, 0f, -2f }, [false, true, false]),
            new("f64", ColumnKind.Float64, new[] { 1.25, double.NaN, 3 }),
            new("i32", ColumnKind.Int32, new[] { 7, 8, 0 }, [false, false, true]),
            new("i64", ColumnKind.Int64, new[] { long.MaxValue, -1L, 0L }),
            new("b", ColumnKind.Boolean, new[] { true, false, true }),
            new("s", ColumnKind.String, new string?[] { "a,b", null, "ü" }),
            new("ts", ColumnKind.Timestamp, new[] { stamp, stamp.AddDays(1), stamp.AddSeconds(-1) }),
            new("v", ColumnKind.Float32List, new float[]?[] { [1f, 2f], [3f], [4f, 5f, 6f] }),
        ]);
        await using (var writer = await ParquetBatchWriter.CreateAsync(path, columns, Ct))
        {
            await writer.WriteAsync(batch, Ct);
            await writer.CompleteAsync(Ct);
        }

        var plan = await Dataset.PlanAsync(path, 100, Ct);
        Assert.Equal(columns.Select(c => (c.Name, c.Kind)), plan.Columns.Select(c => (c.Name, c.Kind)));
        var read = (await Dataset.ReadChunkAsync(plan.Format, plan.Chunks.Single(), plan.Columns, Ct)).Batch;

        Assert.Equal([1.5f, 0f, -2f], read["f32"].As<float>());
        Assert.True(read["f32"].IsNull(1));
        Assert.False(read["f32"].IsNull(0));
        Assert.True(double.IsNaN(read["f64"].As<double>()[1]));
        Assert.True(read["i32"].IsNull(2));
        Assert.Equal(long.MaxValue, read["i64"].As<long>()[0]);
        Assert.Equal([true, false, true], read["b"].As<bool>());
        Assert.Equal(new string?[] { "a,b", null, "ü" }, read["s"].As<string?>());
        Assert.True(read["s"].IsNull(1));
        Assert.Equal(stamp.AddDays(1), read["ts"].As<DateTime>()[1]);
        Assert.Equal(DateTimeKind.Utc, read["ts"].As<DateTime>()[0].Kind);
        Assert.Equal([4f, 5f, 6f], read["v"].As<float[]>()[2]);
        Assert.Equal([3f], read["v"].As<float[]>()[1]);
    }

    [Fact]
    public async Task Optional_columns_read_back_every_value_and_null_in_its_row()
    {
        const int rows = 20_000;
        var path = Path.Combine(_dir, "optional.parquet");
        var random = new Random(11);
        bool[] Mask(Func<int, bool> isNull) => Enumerable.Range(0, rows).Select(isNull).ToArray();
        var masks = new Dictionary<string, bool[]>
        {
            ["some"] = Mask(_ => random.Next(5) == 0),
            ["none"] = Mask(_ => false),
            ["all"] = Mask(_ => true),
            ["ends"] = Mask(i => i < 3 || i >= rows - 2),
            ["runs"] = Mask(i => i / 1000 % 2 == 1),
        };
        var f32 = Enumerable.Range(0, rows).Select(i => i * 0.5f - 7).ToArray();
        var f64 = Enumerable.Range(0, rows).Select(i => i * -1.25).ToArray();
        var i32 = Enumerable.Range(0, rows).Select(i => i * 3 - 11).ToArray();
        var i64 = Enumerable.Range(0, rows).Select(i => (long)i << 33).ToArray();
        var b = Enumerable.Range(0, rows).Select(i => i % 3 == 0).ToArray();
        var columns = new List<SourceColumn>();
        var batchColumns = new List<BatchColumn>();
        foreach (var (name, mask) in masks)
        {
            foreach (var (kind, values) in new (ColumnKind, Array)[] { (ColumnKind.Float32, f32), (ColumnKind.Float64, f64), (ColumnKind.Int32, i32), (ColumnKind.Int64, i64), (ColumnKind.Boolean, b) })
            {
                columns.Add(new($"{kind}_{name}".ToLowerInvariant(), kind, true));
                batchColumns.Add(new($"{kind}_{name}".ToLowerInvariant(), kind, values, mask));
            }
        }

        await using (var writer = await ParquetBatchWriter.CreateAsync(path, columns, Ct))
        {
            await writer.WriteAsync(new ColumnBatch(batchColumns), Ct);
            await writer.CompleteAsync(Ct);
        }

        var plan = await Dataset.PlanAsync(path, rows, Ct);
        var read = (await Dataset.ReadChunkAsync(plan.Format, plan.Chunks.Single(), plan.Columns, Ct)).Batch;
        foreach (var expected in batchColumns)
        {
            var actual = read[expected.Name];
            var mask = expected.Nulls!;
            Assert.Equal(mask.Any(n => n) ? mask : null, actual.Nulls);
            for (var i = 0; i < rows; i++)
            {
                Assert.Equal(mask[i] ? Activator.CreateInstance(expected.Values.GetType().GetElementType()!) : expected.Values.GetValue(i), actual.Values.GetValue(i));
            }
        }
    }

    [Fact]
    public async Task Plan_splits_row_groups_into_chunks_that_cover_every_row_once()
    {
        var path = Path.Combine(_dir, "gen.parquet");
        var options = new GeneratedDatasetOptions { Rows = 2_500, Features = 3, RowGroupRows = 1_000 };
        await DatasetGenerator.WriteParquetAsync(path, options, Ct);

        var plan = await Dataset.PlanAsync(path, 200, Ct);

        // Row groups of 1000, 1000 (over 4 × 200 rows: split at 200) and 500 (kept whole): 5 + 5 + 1 chunks.
        Assert.Equal(11, plan.Chunks.Count);
        Assert.Equal([200L, 200, 200, 200, 200, 200, 200, 200, 200, 200, 500], plan.Chunks.Select(c => c.RowCount));
        Assert.Equal(2_500, plan.TotalRows);
        var keys = new List<long>();
        foreach (var chunk in plan.Chunks)
        {
            var batch = await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, Ct);
            Assert.Equal(chunk.RowStart, batch.FirstRowNumber);
            keys.AddRange(batch.Batch[options.KeyColumn].As<long>());
        }

        Assert.Equal(Enumerable.Range(1, 2_500).Select(i => (long)i), keys);
        var expected = DatasetGenerator.CreateBatch(options, 1_000, 1_000)[GeneratedDatasetOptions.FeatureName(2)].As<float>();
        var secondGroup = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[5], plan.Columns, Ct);
        Assert.Equal(expected.Take(200), secondGroup.Batch[GeneratedDatasetOptions.FeatureName(2)].As<float>());
    }

    [Fact]
    public async Task Csv_chunks_start_at_recorded_offsets_and_respect_quotes()
    {
        var path = Path.Combine(_dir, "in.csv");
        var lines = new List<string> { "id,name,x,flag" };
        for (var i = 0; i < 25; i++)
        {
            var name = i == 3 ? "\"multi\nline, \"\"quoted\"\"\"" : $"n{i}";
            var x = i == 7 ? "abc" : (i * 0.5).ToString(System.Globalization.CultureInfo.InvariantCulture);
            lines.Add($"{i},{name},{x},{(i % 2 == 0 ? "true" : "false")}");
        }

        await File.WriteAllTextAsync(path, string.Join("\r\n", lines) + "\r\n", Ct);

        var plan = await Dataset.PlanAsync(path, 10, Ct);

        Assert.Equal(DatasetFormat.Csv, plan.Format);
        Assert.Equal(25, plan.TotalRows);
        Assert.Equal(3, plan.Chunks.Count);
        Assert.Equal([ColumnKind.Int64, ColumnKind.String, ColumnKind.Float64, ColumnKind.Boolean], plan.Columns.Select(c => c.Kind));
        var first = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], plan.Columns, Ct);
        Assert.Equal("multi\nline, \"quoted\"", first.Batch["name"].As<string>()[3]);
        var issue = Assert.Single(first.Issues);
        Assert.Equal((7, "x"), (issue.Row, issue.Column));
        Assert.Contains("'abc'", issue.Reason, StringComparison.Ordinal);
        Assert.True(first.Batch["x"].IsNull(7));
        var last = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[2], plan.Columns, Ct);
        Assert.Equal([20L, 21, 22, 23, 24], last.Batch["id"].As<long>());
        Assert.Equal(12.0, last.Batch["x"].As<double>()[4]);
    }

    [Fact]
    public async Task Directory_input_with_a_mismatched_file_names_the_file_and_the_column_position()
    {
        var options = new GeneratedDatasetOptions { Rows = 10, Features = 2, RowGroupRows = 10 };
        await DatasetGenerator.WriteParquetAsync(Path.Combine(_dir, "a.parquet"), options, Ct);
        await DatasetGenerator.WriteParquetAsync(Path.Combine(_dir, "b.parquet"), options with { Features = 1 }, Ct);

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(_dir, 100, Ct));

        Assert.Contains("b.parquet", error.Message, StringComparison.Ordinal);
        Assert.Contains("lacks column", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(GeneratedDatasetOptions.FeatureName(1), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unreadable_or_missing_input_is_a_clear_error()
    {
        var bogus = Path.Combine(_dir, "bogus.parquet");
        await File.WriteAllTextAsync(bogus, "this is not parquet", Ct);

        var notParquet = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(bogus, 100, Ct));
        var missing = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(Path.Combine(_dir, "nope.parquet"), 100, Ct));

        Assert.Contains("bogus.parquet", notParquet.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Writer_publishes_only_complete_files()
    {
        var columns = new SourceColumn[] { new("k", ColumnKind.Int64, false) };
        var batch = new ColumnBatch([new("k", ColumnKind.Int64, new[] { 1L, 2L })]);
        var abandoned = Path.Combine(_dir, "abandoned.parquet");
        await using (var writer = await ParquetBatchWriter.CreateAsync(abandoned, columns, Ct))
        {
            await writer.WriteAsync(batch, Ct);
            Assert.False(File.Exists(abandoned));
        }

        var done = Path.Combine(_dir, "done.parquet");
        await using (var writer = await ParquetBatchWriter.CreateAsync(done, columns, Ct))
        {
            await writer.WriteAsync(batch, Ct);
            Assert.Equal(2, await writer.CompleteAsync(Ct));
        }

        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(done));
        Assert.Single(Directory.GetFiles(_dir));
    }
}
