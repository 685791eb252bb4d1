using System.Text;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>
/// The planner (row count, chunk offsets) and the reader (rows of a chunk) follow the same record rules, those of
/// docs/inputs.md: however a file is cut into chunks, reading every chunk gives the rows a reference parser of the
/// documented rules finds, with the same row numbers.
/// </summary>
public sealed class CsvRecordRulesTests : IDisposable
{
    private const string Null = "∅";
    private static readonly int[] ChunkSizes = [1, 2, 3, 7, 1_000_000];

    private readonly string _dir = Directory.CreateTempSubdirectory("bs-csvrules-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<int> Seeds => new(Enumerable.Range(1, 30));

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Every_chunk_size_reads_the_rows_of_the_documented_rules(int seed)
    {
        for (var file = 0; file < 10; file++)
        {
            var random = new Random((seed * 100) + file);
            var content = RandomCsv(random, rows: random.Next(0, 40), columns: random.Next(1, 5));
            await AssertReadsAsDocumented($"random-{seed}-{file}.csv", content);
        }
    }

    [Fact]
    public async Task Records_and_blank_lines_across_the_read_buffers_keep_the_documented_rows()
    {
        // Over 2 MiB: the planner's 1 MiB blocks and the reader's buffer end inside records, quotes and blank lines.
        var random = new Random(4242);
        var text = new StringBuilder();
        while (text.Length < 2_500_000)
        {
            text.Append(RandomCsv(random, rows: 500, columns: 3));
            text.Append('\n');
        }

        // Later "headers" are rows of the first file's header (c0,c1,c2): the same columns.
        await AssertReadsAsDocumented(Write("large.csv", text.ToString()), [997, 20_000, 1_000_000]);
    }

    [Theory]
    [MemberData(nameof(CsvReaderTests.TrickyFiles), MemberType = typeof(CsvReaderTests))]
    public async Task Every_chunk_size_reads_the_tricky_files_as_documented(string name, string content)
    {
        await AssertReadsAsDocumented(name + ".csv", content);
    }

    [Fact]
    public async Task A_line_holding_only_an_empty_quoted_field_is_a_row_not_a_blank_line()
    {
        // Python's csv writer writes a one-column row with an empty value as "" exactly so that it is not read as a
        // blank line: it is a row (a null); in a wider file it is a row with the wrong number of fields.
        var oneColumn = Write("one.csv", "x\n1\n\"\"\n2\n\"\"\r\n\"\"");
        Assert.Equal(["0:1", $"1:{Null}", "2:2", $"3:{Null}", $"4:{Null}"], await AssertReadsAsDocumented(oneColumn));

        var twoColumns = Write("two.csv", "a,b\n1,2\n\"\"\n3,4\n");
        Assert.Equal(["0:1|2", "1:! expected 2 fields, found 1", "2:3|4"], await AssertReadsAsDocumented(twoColumns));
    }

    [Fact]
    public async Task Lines_of_carriage_returns_are_blank_also_at_the_end_of_the_file()
    {
        var path = Write("cr.csv", "a,b\n\r\n1,2\n\r\r\n\r\n3,4\n\r");

        Assert.Equal(["0:1|2", "1:3|4"], await AssertReadsAsDocumented(path));
    }

    [Theory]
    [InlineData("\n\na,b\n1,2\n3,4\n")]
    [InlineData("\r\n\r\na,b\r\n1,2\r\n3,4\r\n")]
    [InlineData("\r\r\na,b\n1,2\n3,4")]
    [InlineData("\uFEFF\na,b\n1,2\n3,4\n")]
    [InlineData("\uFEFF\r\n\r\na,b\n1,2\n3,4\n")]
    public async Task Blank_lines_before_the_header_are_skipped_by_the_planner_too(string content)
    {
        var path = Write("leading.csv", content);

        Assert.Equal(["0:1|2", "1:3|4"], await AssertReadsAsDocumented(path));
        Assert.Equal(["a", "b"], (await Dataset.PlanAsync(path, 1, Ct)).Columns.Select(c => c.Name));
    }

    [Fact]
    public async Task A_row_starting_with_a_zero_width_no_break_space_keeps_it_at_a_chunk_start()
    {
        // Only the file's first bytes can be a byte order mark; the same bytes at a chunk's start are data.
        var path = Write("feff.csv", "\uFEFFa,b\n1,2\n\uFEFF3,4\n");

        Assert.Equal(["0:1|2", "1:\uFEFF3|4"], await AssertReadsAsDocumented(path));
    }

    [Fact]
    public async Task A_file_of_blank_lines_has_no_header_row()
    {
        var path = Write("blank.csv", "\n\r\n\r");

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(path, 10, Ct));

        Assert.Contains("has no header row", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Plans and reads <paramref name="path"/> with every chunk size; all must give the reference parser's rows.</summary>
    private async Task<List<string>> AssertReadsAsDocumented(string path, int[]? chunkSizes = null)
    {
        // Decoded without StreamReader, which would drop a byte order mark before the reference parser sees it.
        var content = Encoding.UTF8.GetString(await File.ReadAllBytesAsync(path, Ct));
        var (header, records) = DocumentedRecords(content);
        var expected = records.Select((r, i) => Render(i, header.Count, r)).ToList();
        foreach (var chunkRows in chunkSizes ?? ChunkSizes)
        {
            var (total, rows) = await ReadAllChunksAsync(path, chunkRows);
            if (!expected.SequenceEqual(rows) || total != rows.Count)
            {
                Assert.Fail($"chunk size {chunkRows}, file {Escape(content)}: planned {total} rows; expected [{string.Join(", ", expected.Select(Escape))}], read [{string.Join(", ", rows.Select(Escape))}]");
            }
        }

        return expected;
    }

    private Task<List<string>> AssertReadsAsDocumented(string name, string content) => AssertReadsAsDocumented(Write(name, content));

    private static async Task<(long Total, List<string> Rows)> ReadAllChunksAsync(string path, int chunkRows)
    {
        var plan = await Dataset.PlanAsync(path, chunkRows, Ct);
        var columns = plan.Columns.Select(c => c with { Kind = ColumnKind.String }).ToArray();
        var rows = new List<string>();
        foreach (var chunk in plan.Chunks)
        {
            var source = await Dataset.ReadChunkAsync(plan.Format, chunk, columns, Ct);
            Assert.Equal(chunk.RowCount, source.Batch.RowCount);
            // String columns never fail a value: the only issue a row can have is its field count.
            var issues = source.Issues.ToDictionary(i => i.Row);
            for (var r = 0; r < source.Batch.RowCount; r++)
            {
                var number = source.FirstRowNumber + r;
                rows.Add(issues.TryGetValue(r, out var issue)
                    ? $"{number}:! {issue.Reason}"
                    : $"{number}:{string.Join('|', source.Batch.Columns.Select(c => c.IsNull(r) ? Null : c.As<string>()[r]))}");
            }
        }

        return (plan.TotalRows, rows);
    }

    private static string Render(long number, int fields, IReadOnlyList<string> record) =>
        record.Count != fields
            ? $"{number}:! expected {fields} fields, found {record.Count}"
            : $"{number}:{string.Join('|', record.Select(v => v.Length == 0 ? Null : v))}";

    /// <summary>
    /// The rules of docs/inputs.md, character by character and independent of the product code: a byte order mark at
    /// the file's start is skipped; a record ends at a line feed outside quotes; a line of nothing but carriage returns
    /// is blank and skipped; the first other line is the header; quotes open anywhere, <c>""</c> inside quotes is a
    /// quote; a carriage return outside quotes is dropped.
    /// </summary>
    private static (IReadOnlyList<string> Header, List<IReadOnlyList<string>> Records) DocumentedRecords(string content)
    {
        var text = content.StartsWith('\uFEFF') ? content[1..] : content;
        var lines = new List<string>();
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '"')
            {
                quoted = !quoted;
            }
            else if (text[i] == '\n' && !quoted)
            {
                lines.Add(text[start..i]);
                start = i + 1;
            }
        }

        if (start < text.Length)
        {
            lines.Add(text[start..]);
        }

        var records = lines.Where(l => l.Any(c => c != '\r')).Select(Fields).ToList();
        return (records[0], records.Skip(1).ToList());

        static IReadOnlyList<string> Fields(string line)
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            var inQuotes = false;
            for (var i = 0; i < line.Length; i++)
            {
                var c = line[i];
                if (inQuotes && c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    inQuotes = !inQuotes;
                }
                else if (inQuotes || c is not (',' or '\r'))
                {
                    field.Append(c);
                }
                else if (c == ',')
                {
                    fields.Add(field.ToString());
                    field.Clear();
                }
            }

            fields.Add(field.ToString());
            return fields;
        }
    }

    /// <summary>
    /// A CSV file with every rule in play: a byte order mark, blank lines (empty, carriage returns only) before the
    /// header, between rows and at the end, <c>\n</c>, <c>\r\n</c> and <c>\r\r\n</c> line ends, quoted fields with
    /// commas, line breaks and doubled quotes, lines holding only <c>""</c>, rows with too few or too many fields,
    /// and a last line with or without its line feed.
    /// </summary>
    private static string RandomCsv(Random random, int rows, int columns)
    {
        var text = new StringBuilder();
        if (random.Next(4) == 0)
        {
            text.Append('\uFEFF');
        }

        AppendBlankLines(random, text, random.Next(4) == 0 ? random.Next(1, 3) : 0);
        text.Append(string.Join(',', Enumerable.Range(0, columns).Select(c => $"c{c}"))).Append(LineEnd(random));
        for (var r = 0; r < rows; r++)
        {
            AppendBlankLines(random, text, random.Next(6) == 0 ? random.Next(1, 3) : 0);
            var fields = random.Next(12) == 0 ? random.Next(1, columns + 2) : columns;
            if (random.Next(15) == 0)
            {
                text.Append("\"\"");
            }
            else
            {
                text.Append(string.Join(',', Enumerable.Range(0, fields).Select(_ => RandomField(random))));
            }

            if (r < rows - 1 || random.Next(2) == 0)
            {
                text.Append(LineEnd(random));
            }
            else
            {
                return text.ToString();
            }
        }

        AppendBlankLines(random, text, random.Next(3) == 0 ? random.Next(1, 3) : 0);
        if (random.Next(4) == 0)
        {
            text.Append(random.Next(2) == 0 ? "\r" : "\r\r");
        }

        return text.ToString();
    }

    private static void AppendBlankLines(Random random, StringBuilder text, int count)
    {
        for (var i = 0; i < count; i++)
        {
            text.Append(random.Next(4) switch { 0 => "\n", 1 => "\r\n", 2 => "\r\r\n", _ => "\r" + LineEnd(random) });
        }
    }

    private static string LineEnd(Random random) => random.Next(3) switch { 0 => "\n", 1 => "\r\n", _ => "\r\r\n" };

    private static string RandomField(Random random)
    {
        const string Alphabet = "ab9.-é漢 \uFEFF";
        var plain = new string(Enumerable.Range(0, random.Next(4)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray());
        return random.Next(10) switch
        {
            0 => string.Empty,
            1 => "\"\"",
            2 => "\"" + plain + ",\r\n\"\"" + plain + "\n\"",
            3 => plain + "\"" + plain + ",\n\"" + plain,
            4 => plain + "\r" + plain,
            5 => "\"" + plain + "\"",
            6 => "\"\r\"",
            7 => "\"\n\"" + plain,
            _ => plain,
        };
    }

    private static string Escape(string text) =>
        text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\uFEFF", "\\uFEFF", StringComparison.Ordinal);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }
}
