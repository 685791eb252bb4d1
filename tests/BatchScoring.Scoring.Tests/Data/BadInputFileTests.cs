using System.Text;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>Damaged, empty and hostile input files: a clear error naming the file, and never a line of the file in it.</summary>
public sealed class BadInputFileTests : IDisposable
{
    private const string Canary = "CANARY-6b1d-root:x:0:0:secret";

    private readonly string _dir = Directory.CreateTempSubdirectory("bs-bad-input-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_text_file_read_as_Parquet_is_refused_without_quoting_it()
    {
        var secret = Write("passwd", $"{Canary}\nbin:x:1:1::/:/usr/sbin/nologin\n{Canary}");
        var asParquet = Link("secret.parquet", secret);

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(asParquet, 100, Ct));

        Assert.Contains(asParquet, error.Message, StringComparison.Ordinal);
        Assert.Contains("not a Parquet file", error.Message, StringComparison.Ordinal);
        AssertNoCanary(error);
    }

    [Fact]
    public async Task Csv_header_problems_give_positions_not_names()
    {
        var duplicate = Write("dup.csv", $"{Canary},{Canary}\n1,2\n");

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(duplicate, 100, Ct));

        Assert.Contains("columns 1 and 2", error.Message, StringComparison.Ordinal);
        AssertNoCanary(error);
    }

    [Fact]
    public async Task Empty_truncated_and_damaged_Parquet_files_name_the_file()
    {
        var good = Path.Combine(_dir, "good.parquet");
        await DatasetGenerator.WriteParquetAsync(good, new GeneratedDatasetOptions { Rows = 500, Features = 3, RowGroupRows = 250 }, Ct);
        var bytes = await File.ReadAllBytesAsync(good, Ct);
        var cases = new Dictionary<string, byte[]>
        {
            ["empty.parquet"] = [],
            ["tiny.parquet"] = "PAR1"u8.ToArray(),
            ["truncated.parquet"] = bytes[..(bytes.Length / 2)],
            ["no-footer-magic.parquet"] = bytes[..^1],
            ["footer-garbage.parquet"] = Corrupt(bytes, bytes.Length - 200, 150),
        };

        foreach (var (name, content) in cases)
        {
            var path = Path.Combine(_dir, name);
            await File.WriteAllBytesAsync(path, content, Ct);
            var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(path, 100, Ct));
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
        }

        Assert.Contains("empty (0 bytes)", (await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(Path.Combine(_dir, "empty.parquet"), 100, Ct))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Damaged_Parquet_pages_fail_the_chunk_with_a_DatasetException()
    {
        var path = Path.Combine(_dir, "pages.parquet");
        await DatasetGenerator.WriteParquetAsync(path, new GeneratedDatasetOptions { Rows = 2_000, Features = 4, RowGroupRows = 2_000 }, Ct);
        var plan = await Dataset.PlanAsync(path, 10_000, Ct);
        var bytes = await File.ReadAllBytesAsync(path, Ct);
        // Overwrite the data pages (after the header magic, well before the footer) once the plan exists.
        await File.WriteAllBytesAsync(path, Corrupt(bytes, 4, bytes.Length / 2), Ct);

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], plan.Columns, Ct));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("row group 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Empty_csv_is_refused_and_header_only_csv_is_a_valid_empty_input()
    {
        var empty = Write("empty.csv", string.Empty);
        var headerOnly = Write("header.csv", "id,a,b\n");

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(empty, 100, Ct));
        var plan = await Dataset.PlanAsync(headerOnly, 100, Ct);

        Assert.Contains(empty, error.Message, StringComparison.Ordinal);
        Assert.Contains("empty", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, plan.TotalRows);
        Assert.Empty(plan.Chunks);
        Assert.Equal(["id", "a", "b"], plan.Columns.Select(c => c.Name));
        Assert.All(plan.Columns, c => Assert.Equal(ColumnKind.Float64, c.Kind));
    }

    [Fact]
    public async Task Empty_parquet_with_a_schema_is_a_valid_empty_input()
    {
        var path = Path.Combine(_dir, "zero.parquet");
        var columns = new SourceColumn[] { new("id", ColumnKind.Int64, false), new("a", ColumnKind.Float32, false) };
        await using (var writer = await ParquetBatchWriter.CreateAsync(path, columns, Ct))
        {
            await writer.CompleteAsync(Ct);
        }

        var plan = await Dataset.PlanAsync(path, 100, Ct);

        Assert.Equal(0, plan.TotalRows);
        Assert.Empty(plan.Chunks);
        Assert.Equal(["id", "a"], plan.Columns.Select(c => c.Name));
    }

    [Fact]
    public async Task A_csv_without_line_breaks_or_with_an_unclosed_quote_is_refused_not_read_into_memory()
    {
        var path = Path.Combine(_dir, "one-line.csv");
        await File.WriteAllTextAsync(path, "id,\"" + new string('x', CsvDataset.MaxRecordLength + 10), Ct);

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(path, 100, Ct));

        Assert.Contains("quote is never closed", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chunk_specs_with_impossible_numbers_are_refused()
    {
        var csv = Write("rows.csv", "id,a\n1,2\n3,4\n");
        var plan = await Dataset.PlanAsync(csv, 100, Ct);
        var chunk = plan.Chunks[0];

        foreach (var bad in new[] { chunk with { RowCount = -1 }, chunk with { RowStart = -5 }, chunk with { ByteOffset = -1 }, chunk with { ByteOffset = 1_000_000 }, chunk with { RowCount = 50 } })
        {
            var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.ReadChunkAsync(plan.Format, bad, plan.Columns, Ct));
            Assert.Contains(csv, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task NaN_infinities_nulls_and_wrong_typed_cells_become_poison_rows_with_their_reason()
    {
        var lines = new List<string> { "id,a,b" };
        lines.AddRange(Enumerable.Range(0, 40).Select(i => $"{i},{i * 0.5},{i}"));
        lines.Add("100,NaN,1");
        lines.Add("101,Infinity,1");
        lines.Add("102,-Infinity,1");
        lines.Add("103,,1");
        lines.Add("104,abc,1");
        lines.Add("105,1");
        var path = Write("poison.csv", string.Join('\n', lines) + "\n");
        using var model = ScoringModel.Load(SampleModels.Mlp([2, 1], seed: 3).Bytes, TestSupport.CpuOptions);
        var plan = await Dataset.PlanAsync(path, 1_000, Ct);
        var mapping = model.MapInputs(plan.Columns.Select(c => (c.Name, c.Kind)).ToArray(), new InputMappingRequest { KeyColumn = "id" });

        var source = await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], plan.Columns, Ct);
        var result = model.Score(source.Batch, mapping, cancellationToken: Ct);

        Assert.Equal(40, result.ScoredRows.Length);
        var reasons = result.Failures.ToDictionary(f => f.Row, f => f.Reason);
        Assert.Equal([40, 41, 42, 43, 44, 45], reasons.Keys.Order());
        Assert.Contains("non-finite value NaN in column 'a'", reasons[40], StringComparison.Ordinal);
        Assert.Contains("non-finite value Infinity in column 'a'", reasons[41], StringComparison.Ordinal);
        Assert.Contains("non-finite value -Infinity in column 'a'", reasons[42], StringComparison.Ordinal);
        Assert.Contains("null value in column 'a'", reasons[43], StringComparison.Ordinal);
        // The reader says why a cell was unreadable (the engine reports that reason for the row).
        Assert.Contains(source.Issues, i => i.Row == 44 && i.Column == "a" && i.Reason.Contains("unparsable value 'abc' for Float64", StringComparison.Ordinal));
        Assert.Contains(source.Issues, i => i.Row == 45 && i.Reason.Contains("expected 3 fields, found 2", StringComparison.Ordinal));
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    private string Link(string name, string target)
    {
        var path = Path.Combine(_dir, name);
        File.CreateSymbolicLink(path, target);
        return path;
    }

    private static byte[] Corrupt(byte[] bytes, int start, int count)
    {
        var copy = bytes.ToArray();
        var random = new Random(start);
        for (var i = start; i < start + count && i < copy.Length; i++)
        {
            copy[i] = (byte)random.Next(256);
        }

        return copy;
    }

    private static void AssertNoCanary(Exception error)
    {
        Assert.DoesNotContain("CANARY", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("root:x", error.Message, StringComparison.Ordinal);
        // Parquet.Net's own message quotes the first and last four bytes in hex ("CANA" = 43414E41).
        Assert.DoesNotContain(Convert.ToHexString("CANA"u8), error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Convert.ToHexString("cret"u8), error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
