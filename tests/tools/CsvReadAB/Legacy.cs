using System.Globalization;
using System.Text;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Tests.Data;

/// <summary>CsvDataset's chunk reader before the rewrite (verbatim, for the A/B).</summary>
internal static class LegacyReader
{
    public static ColumnBatch Read(ChunkSpec chunk, IReadOnlyList<SourceColumn> columns)
    {
        var e = ReadSlicesAsync(chunk, columns, (int)chunk.RowCount, CancellationToken.None).GetAsyncEnumerator();
        e.MoveNextAsync().AsTask().GetAwaiter().GetResult();
        return e.Current.Batch;
    }

    private static bool TryParseDouble(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    private static IReadOnlyList<string> ReadHeader(LegacyCsvRecordParser parser, string path)
    {
        var header = parser.Next() ?? throw new DatasetException($"CSV file '{path}' has no header row.");
        for (var c = 0; c < header.Count; c++)
        {
            var first = IndexOf(header, header[c]);
            if (first < c && header[c].Length > 0)
            {
                throw new DatasetException($"CSV file '{path}' has the same column name twice in its header (columns {first + 1} and {c + 1}).");
            }
        }

        return header;

        static int IndexOf(IReadOnlyList<string> names, string name)
        {
            for (var i = 0; i < names.Count; i++)
            {
                if (names[i] == name)
                {
                    return i;
                }
            }

            return -1;
        }
    }

    internal static async IAsyncEnumerable<SourceBatch> ReadSlicesAsync(
        ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, int sliceRows,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sliceRows, 1);
        string[] header;
        await using (var headerStream = File.OpenRead(chunk.Path))
        using (var headerReader = new StreamReader(headerStream, Encoding.UTF8))
        {
            header = [.. ReadHeader(new LegacyCsvRecordParser(headerReader, chunk.Path), chunk.Path)];
        }

        var ordinals = columns.Select(c => Array.IndexOf(header, c.Name)).ToArray();
        for (var c = 0; c < columns.Count; c++)
        {
            if (ordinals[c] < 0)
            {
                throw new DatasetException($"CSV file '{chunk.Path}' has no column '{columns[c].Name}'.");
            }
        }

        var rows = checked((int)chunk.RowCount);
        await using var stream = File.OpenRead(chunk.Path);
        if (chunk.ByteOffset > stream.Length)
        {
            throw new DatasetException(
                $"CSV file '{chunk.Path}' is {stream.Length:N0} bytes long; chunk {chunk.Index} starts at byte {chunk.ByteOffset:N0}. Was the file changed after the job was planned?");
        }

        stream.Seek(chunk.ByteOffset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var parser = new LegacyCsvRecordParser(reader, chunk.Path);
        for (var sliceStart = 0; sliceStart < rows; sliceStart += sliceRows)
        {
            var count = Math.Min(sliceRows, rows - sliceStart);
            var builders = columns.Select(c => new ColumnBuilder(c, count)).ToArray();
            var issues = new List<RowIssue>();
            for (var row = 0; row < count; row++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var record = parser.Next() ?? throw new DatasetException(
                    $"CSV file '{chunk.Path}' ended after {sliceStart + row} of the {rows} rows planned for chunk {chunk.Index}. Was the file changed after the job was planned?");
                if (record.Count != header.Length)
                {
                    issues.Add(new RowIssue(row, "*", $"expected {header.Length} fields, found {record.Count}"));
                    foreach (var builder in builders)
                    {
                        builder.SetNull(row);
                    }

                    continue;
                }

                for (var c = 0; c < builders.Length; c++)
                {
                    if (builders[c].Set(row, record[ordinals[c]]) is { } reason)
                    {
                        issues.Add(new RowIssue(row, columns[c].Name, reason));
                    }
                }
            }

            yield return new SourceBatch(new ColumnBatch(builders.Select(b => b.Build()).ToArray()), chunk.RowStart + sliceStart, issues);
        }
    }

    private sealed class ColumnBuilder(SourceColumn column, int rows)
    {
        private readonly Array _values = Array.CreateInstance(BatchColumn.ArrayTypeOf(column.Kind).GetElementType()!, rows);
        private bool[]? _nulls;

        public void SetNull(int row) => (_nulls ??= new bool[rows])[row] = true;

        /// <summary>Stores the parsed value; returns why the text could not be parsed, or null.</summary>
        public string? Set(int row, string text)
        {
            if (text.Length == 0)
            {
                SetNull(row);
                return null;
            }

            switch (column.Kind)
            {
                case ColumnKind.String:
                    ((string[])_values)[row] = text;
                    return null;
                case ColumnKind.Int64 when long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l):
                    ((long[])_values)[row] = l;
                    return null;
                case ColumnKind.Float64 when TryParseDouble(text, out var d):
                    ((double[])_values)[row] = d;
                    return null;
                case ColumnKind.Boolean when bool.TryParse(text, out var b):
                    ((bool[])_values)[row] = b;
                    return null;
                default:
                    SetNull(row);
                    return $"unparsable value '{Truncate(text)}' for {column.Kind} column '{column.Name}'";
            }
        }

        public BatchColumn Build() => new(column.Name, column.Kind, _values, _nulls);

        private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";
    }
}
