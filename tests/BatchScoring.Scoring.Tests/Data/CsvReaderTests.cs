using System.Globalization;
using System.Text;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>
/// The byte-level CSV planner and reader against the character-level code they replaced (<see cref="LegacyCsv"/>) and
/// against values computed independently of the file.
/// </summary>
public sealed class CsvReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-csv-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> TrickyFiles => new(Tricky);

    /// <summary>
    /// The old planner took a blank line before the header for the header, and counted the real header as a row; the
    /// documented behaviour for such files is checked in <see cref="CsvRecordRulesTests"/>, not against the old planner.
    /// </summary>
    public static TheoryData<string, string> FilesTheOldPlannerGotRight => new(Tricky.Where(f => f.Name != "leading-empty-lines"));

    private static readonly (string Name, string Content)[] Tricky =
    [
        ("quoted-newlines", "a,b,c\n1,\"x\ny\",2\n3,\"p,\"\"q\"\"\nr\",4\n5,6,7\n"),
        ("crlf", "a,b,c\r\n1,2,3\r\n4,\"5\r\n6\",7\r\n8,9,10\r\n"),
        ("no-trailing-newline", "a,b,c\n1,2,3\n4,5,6\n7,8,9"),
        ("empty-lines", "a,b,c\n\n1,2,3\n\r\n\n4,5,6\n\n\n7,8,9\n\n"),
        ("leading-empty-lines", "\n\na,b,c\n1,2,3\n4,5,6\n"),
        ("bare-carriage-returns", "a,b,c\r1,2,3\r\n4,5\r,6\n\r\r7,8,9\n"),
        ("quote-mid-field", "a,b,c\n1,ab\"c,d\n\"e,2\n3,4,5\n"),
        ("only-quotes-line", "a,b,c\n1,2,3\n\"\"\n4,5,6\n"),
        ("byte-order-mark", "\uFEFFa,b,c\n1,2,3\n4,5,6\n"),
        ("header-only-no-newline", "a,b,c"),
        ("unicode", "a,b,c\né,漢字,\"😀,\n😀\"\n1,2,3\n"),
    ];

    [Theory]
    [MemberData(nameof(FilesTheOldPlannerGotRight))]
    public async Task Planner_gives_the_offsets_and_row_counts_of_the_old_planner(string name, string content)
    {
        var path = Write(name + ".csv", content);
        foreach (var chunkRows in new[] { 1, 2, 3, 100 })
        {
            var (offsets, rows) = await LegacyCsv.PlanAsync(path, chunkRows, Ct);

            var plan = await Dataset.PlanAsync(path, chunkRows, Ct);

            Assert.Equal(rows, plan.TotalRows);
            Assert.Equal(offsets, plan.Chunks.Select(c => c.ByteOffset));
            Assert.Equal(offsets.Select((_, i) => Math.Min(chunkRows, rows - ((long)i * chunkRows))), plan.Chunks.Select(c => c.RowCount));
        }
    }

    [Fact]
    public async Task Planner_offsets_point_at_record_starts_a_reader_can_begin_at()
    {
        var path = Write("starts.csv", "a,b\r\n1,\"x\r\ny\"\r\n\r\n2,z\r\n3,\"\"\"\"\r\n4,w");

        var plan = await Dataset.PlanAsync(path, 1, Ct);

        var bytes = await File.ReadAllBytesAsync(path, Ct);
        Assert.Equal(["1,", "2,", "3,", "4,"], plan.Chunks.Select(c => Encoding.UTF8.GetString(bytes, (int)c.ByteOffset, 2)));
        var columns = new[] { new SourceColumn("a", ColumnKind.Int64, true), new SourceColumn("b", ColumnKind.String, true) };
        var values = new List<string>();
        foreach (var chunk in plan.Chunks)
        {
            values.AddRange((await Dataset.ReadChunkAsync(plan.Format, chunk, columns, Ct)).Batch["b"].As<string>());
        }

        Assert.Equal(["x\r\ny", "z", "\"", "w"], values);
    }

    [Theory]
    [InlineData(1, 300, 10)]
    [InlineData(2, 300, 10)]
    [InlineData(3, 300, 10)]
    [InlineData(4, 300, 10)]
    [InlineData(5, 3_000, 1_200)] // over 4 MiB with long fields: records and quotes cross the reader's buffer boundaries
    public async Task Reader_returns_the_records_of_the_old_parser_on_random_files(int seed, int rows, int maxFieldLength)
    {
        // RandomCsv writes no line of only "" and no lone carriage return at the end: the old parser skipped the one and
        // read the other as a record, against the planner (CsvRecordRulesTests checks those).
        var random = new Random(seed);
        var path = Write($"random-{seed}.csv", RandomCsv(random, rows, maxFieldLength));
        var expected = LegacyCsv.ReadAll(path).Skip(1).ToList();
        var chunkRows = random.Next(1, 80);
        var (offsets, _) = await LegacyCsv.PlanAsync(path, chunkRows, Ct);

        var plan = await Dataset.PlanAsync(path, chunkRows, Ct);

        Assert.Equal(offsets, plan.Chunks.Select(c => c.ByteOffset));
        Assert.Equal(expected.Count, plan.TotalRows);
        var columns = new[] { "a", "b", "c" }.Select(n => new SourceColumn(n, ColumnKind.String, true)).ToArray();
        var row = 0;
        foreach (var chunk in plan.Chunks)
        {
            var batch = await Dataset.ReadChunkAsync(plan.Format, chunk, columns, Ct);
            for (var r = 0; r < batch.Batch.RowCount; r++, row++)
            {
                var record = expected[row];
                if (record.Count != 3)
                {
                    Assert.Contains(batch.Issues, i => i.Row == r && i.Column == "*" && i.Reason == $"expected 3 fields, found {record.Count}");
                    continue;
                }

                for (var c = 0; c < 3; c++)
                {
                    var column = batch.Batch.Columns[c];
                    Assert.Equal(record[c].Length == 0 ? null : record[c], column.IsNull(r) ? null : column.As<string>()[r]);
                }
            }
        }

        Assert.Equal(expected.Count, row);
    }

    [Fact]
    public async Task Numbers_parse_to_the_values_they_were_written_from()
    {
        var random = new Random(7);
        var doubles = Enumerable.Range(0, 2_000).Select(_ => RandomFinite(random)).Concat([0.0, -0.0, double.Epsilon, double.MaxValue, double.MinValue, 1e-310]).ToArray();
        var longs = doubles.Select((_, i) => i switch { 0 => long.MinValue, 1 => long.MaxValue, _ => random.NextInt64(long.MinValue, long.MaxValue) }).ToArray();
        var lines = new List<string> { "d,e,f,l,flag" };
        for (var i = 0; i < doubles.Length; i++)
        {
            var d = doubles[i];
            var e = d.ToString("E10", CultureInfo.InvariantCulture);
            var f = (float)d;
            lines.Add($"{d.ToString("R", CultureInfo.InvariantCulture)},{(i % 3 == 0 ? "\"" + e + "\"" : " " + e + " ")},{f.ToString("R", CultureInfo.InvariantCulture)},{longs[i]},{(i % 2 == 0 ? "True" : " false ")}");
        }

        var path = Write("numbers.csv", string.Join('\n', lines) + "\n");
        var columns = new SourceColumn[]
        {
            new("d", ColumnKind.Float64, true), new("e", ColumnKind.Float64, true), new("f", ColumnKind.Float32, true),
            new("l", ColumnKind.Int64, true), new("flag", ColumnKind.Boolean, true),
        };

        var plan = await Dataset.PlanAsync(path, 700, Ct);
        var batches = new List<ColumnBatch>();
        foreach (var chunk in plan.Chunks)
        {
            var source = await Dataset.ReadChunkAsync(plan.Format, chunk, columns, Ct);
            Assert.Empty(source.Issues);
            batches.Add(source.Batch);
        }

        var batch = ColumnBatch.Concat(batches);
        Assert.Equal([ColumnKind.Float64, ColumnKind.Float64, ColumnKind.Float64, ColumnKind.Int64, ColumnKind.Boolean], plan.Columns.Select(c => c.Kind));
        Assert.Equal(doubles.Select(BitConverter.DoubleToInt64Bits), batch["d"].As<double>().Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(doubles.Select(d => double.Parse(d.ToString("E10", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)), batch["e"].As<double>());
        Assert.Equal(doubles.Select(d => (float)d), batch["f"].As<float>());
        Assert.Equal(longs, batch["l"].As<long>());
        Assert.Equal(doubles.Select((_, i) => i % 2 == 0), batch["flag"].As<bool>());
    }

    [Fact]
    public async Task Numeric_cells_parse_exactly_as_dotnet_parses_their_text()
    {
        // Number-like and almost-number text: the fast float path must accept and reject what double/float.TryParse do.
        var random = new Random(11);
        var pieces = new[] { "0", "1", "7", "9", "12345678901234567890", ".", "-", "+", "e", "E", "e-", "E+", " ", "Infinity", "NaN", "inf", "nan", "x", "0x", "∞", "1e400", "1e-400", "\u00a0" };
        var texts = Enumerable.Range(0, 4_000).Select(_ => string.Concat(Enumerable.Range(0, random.Next(1, 6)).Select(_ => pieces[random.Next(pieces.Length)])))
            .Where(t => t.Trim().Length > 0).Distinct().ToArray();
        var path = Write("texts.csv", "id,d,f\n" + string.Concat(texts.Select((t, i) => $"{i},{t},{t}\n")));
        var columns = new SourceColumn[] { new("d", ColumnKind.Float64, true), new("f", ColumnKind.Float32, true) };
        var plan = await Dataset.PlanAsync(path, texts.Length, Ct);

        var source = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], columns, Ct);

        var doubles = source.Batch["d"];
        var floats = source.Batch["f"];
        for (var i = 0; i < texts.Length; i++)
        {
            var parsesAsDouble = double.TryParse(texts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var d);
            var parsesAsFloat = float.TryParse(texts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var f);
            Assert.True(parsesAsDouble == !doubles.IsNull(i), $"'{texts[i]}' as double");
            Assert.True(parsesAsFloat == !floats.IsNull(i), $"'{texts[i]}' as float");
            Assert.Equal(parsesAsDouble ? BitConverter.DoubleToInt64Bits(d) : 0, parsesAsDouble ? BitConverter.DoubleToInt64Bits(doubles.As<double>()[i]) : 0);
            Assert.Equal(parsesAsFloat ? BitConverter.SingleToInt32Bits(f) : 0, parsesAsFloat ? BitConverter.SingleToInt32Bits(floats.As<float>()[i]) : 0);
        }

        Assert.Contains(texts, t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
        Assert.Contains(texts, t => !double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
    }

    [Fact]
    public async Task Bad_values_name_the_value_the_kind_and_the_column_and_become_nulls()
    {
        var path = Write("bad.csv", "id,x,n,flag\n1,1.5,7,true\n2,\"1,5\",99999999999999999999,yes\n3,,,\n4,NaN,0x10,TRUE\n5,é,1.0,1\n");
        var columns = new SourceColumn[] { new("x", ColumnKind.Float64, true), new("n", ColumnKind.Int64, true), new("flag", ColumnKind.Boolean, true) };
        var plan = await Dataset.PlanAsync(path, 100, Ct);

        var source = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], columns, Ct);

        Assert.Equal(
            [
                (1, "x", "unparsable value '1,5' for Float64 column 'x'"),
                (1, "n", "unparsable value '99999999999999999999' for Int64 column 'n'"),
                (1, "flag", "unparsable value 'yes' for Boolean column 'flag'"),
                (3, "n", "unparsable value '0x10' for Int64 column 'n'"),
                (4, "x", "unparsable value 'é' for Float64 column 'x'"),
                (4, "n", "unparsable value '1.0' for Int64 column 'n'"),
                (4, "flag", "unparsable value '1' for Boolean column 'flag'"),
            ],
            source.Issues.Select(i => (i.Row, i.Column, i.Reason)));
        Assert.Equal([false, true, true, false, true], Enumerable.Range(0, 5).Select(r => source.Batch["x"].IsNull(r)));
        Assert.True(double.IsNaN(source.Batch["x"].As<double>()[3]));
        Assert.Equal([true, false, false, true, false], source.Batch["flag"].As<bool>());
    }

    [Fact]
    public async Task A_record_longer_than_the_limit_without_quotes_is_refused()
    {
        var path = Path.Combine(_dir, "long.csv");
        await File.WriteAllTextAsync(path, "id,a\n1," + new string('7', CsvDataset.MaxRecordLength) + "\n", Ct);

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(path, 100, Ct));

        Assert.Contains($"has a record longer than {CsvDataset.MaxRecordLength:N0} characters; is it a CSV file?", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    private static double RandomFinite(Random random)
    {
        while (true)
        {
            var d = BitConverter.Int64BitsToDouble(random.NextInt64());
            if (double.IsFinite(d))
            {
                return d;
            }
        }
    }

    private static string RandomCsv(Random random, int rows, int maxFieldLength)
    {
        var text = new StringBuilder("a,b,c\n");
        for (var r = 0; r < rows; r++)
        {
            var fields = random.Next(10) == 0 ? random.Next(2) * 2 + 2 : 3; // now and then 2 or 4 fields
            for (var f = 0; f < fields; f++)
            {
                if (f > 0)
                {
                    text.Append(',');
                }

                text.Append(RandomField(random, maxFieldLength));
            }

            var last = r == rows - 1;
            if (!last || random.Next(2) == 0)
            {
                text.Append(random.Next(3) == 0 ? "\r\n" : "\n");
            }

            if (!last && random.Next(15) == 0)
            {
                text.Append(random.Next(3) switch { 0 => "\n", 1 => "\r\n", _ => "\r\r\n" });
            }
        }

        return text.ToString();
    }

    private static string RandomField(Random random, int maxFieldLength)
    {
        const string Alphabet = "abcxyz0123456789.-é漢 ";
        var plain = new string(Enumerable.Range(0, random.Next(maxFieldLength)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray());
        return random.Next(8) switch
        {
            0 => string.Empty,
            1 => "\"" + plain + ",\r\n\"\"" + plain + "\n\"",
            2 => "\"\"",
            3 => plain + "\"" + plain + ",\n\"" + plain,
            4 => plain + "\r" + plain,
            5 => "\"" + plain + "\"",
            _ => plain,
        };
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }
}
