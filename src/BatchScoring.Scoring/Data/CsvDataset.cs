using System.Globalization;
using System.Text;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// CSV input (RFC 4180: comma-separated, optional double-quoted fields, header row). Planning scans the file once
/// (<see cref="CsvChunkPlanner"/>) and records the byte offset where each chunk starts, so a worker seeks straight to
/// its rows; <see cref="CsvRecordReader"/> parses records from UTF-8 bytes and numbers straight from the field bytes.
/// Column types are inferred from the first rows: integers, then floating point, then booleans, else text.
/// </summary>
public static class CsvDataset
{
    private const int InferenceRows = 1000;

    /// <summary>Longest record read (characters): a file with no line breaks, or an unclosed quote, must not fill the memory.</summary>
    public const int MaxRecordLength = 16 * 1024 * 1024;

    internal static async Task<(IReadOnlyList<SourceColumn> Columns, IReadOnlyList<ChunkSpec> Chunks, long Rows)> PlanFileAsync(
        string path, int chunkRows, int firstChunkIndex, CancellationToken cancellationToken)
    {
        await using var stream = InputFile.Open(path, useAsync: true);
        // Only the bytes present when planning starts: a device or a file still being written cannot make planning endless.
        var length = stream.Length;
        var planner = new CsvChunkPlanner(chunkRows, path);
        long position = 0;
        var buffer = new byte[1 << 20];
        int read;
        while (position < length && (read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - position)), cancellationToken)) > 0)
        {
            planner.Scan(buffer.AsSpan(0, read), position);
            position += read;
        }

        if (!planner.HeaderDone && position == 0)
        {
            throw new DatasetException($"CSV file '{path}' is empty (a header row is required).");
        }

        var columns = await InferColumnsAsync(path, cancellationToken);

        var (offsets, rows) = (planner.Offsets, planner.Rows);
        var chunks = new List<ChunkSpec>(offsets.Count);
        for (var c = 0; c < offsets.Count; c++)
        {
            var start = (long)c * chunkRows;
            chunks.Add(new ChunkSpec(firstChunkIndex + c, path, null, start, Math.Min(chunkRows, rows - start), offsets[c]));
        }

        return (columns, chunks, rows);
    }

    internal static async Task<IReadOnlyList<SourceColumn>> InferColumnsAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = InputFile.Open(path, useAsync: false);
        var reader = new CsvRecordReader(stream, path, atFileStart: true);
        var header = ReadHeader(reader, path);
        var stats = header.Select(_ => new KindCounts()).ToArray();
        var rows = 0;
        for (; rows < InferenceRows && reader.Next(); rows++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (var c = 0; c < header.Length && c < reader.FieldCount; c++)
            {
                stats[c].Add(reader.FieldString(c));
            }
        }

        await Task.CompletedTask;
        // A column without a name (e.g. after a trailing comma) cannot be asked for by name: it is left out.
        // A header-only file is a valid, empty input. With no values to infer from, its columns read as numbers (at
        // submit and on the worker alike), so that model features map and the job succeeds with empty outputs.
        return header.Select((name, c) => new SourceColumn(name, rows == 0 ? ColumnKind.Float64 : stats[c].Kind, true)).Where(c => c.Name.Length > 0).ToArray();
    }

    /// <summary>
    /// The header row, checked. Errors give positions, never names: for a file that is not really CSV the "header"
    /// is its first line, and quoting it would hand that line to whoever pointed a job at the file.
    /// </summary>
    private static string[] ReadHeader(CsvRecordReader reader, string path)
    {
        var header = reader.Next() ? reader.RecordStrings() : throw new DatasetException($"CSV file '{path}' has no header row.");
        for (var c = 0; c < header.Length; c++)
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

    /// <summary>
    /// Votes on a column's type. A column stays numeric when at least 90% of its sampled values parse, so a few
    /// bad cells become failed rows (with the value in the reason) instead of turning the whole column into text.
    /// </summary>
    private sealed class KindCounts
    {
        private int _values;
        private int _longs;
        private int _doubles;
        private int _bools;

        public void Add(string text)
        {
            if (text.Length == 0)
            {
                return;
            }

            _values++;
            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
            {
                _longs++;
            }

            if (TryParseDouble(text, out _))
            {
                _doubles++;
            }

            if (bool.TryParse(text, out _))
            {
                _bools++;
            }
        }

        public ColumnKind Kind =>
            _values == 0 ? ColumnKind.String
            : _longs == _values ? ColumnKind.Int64
            : _doubles * 10 >= _values * 9 ? ColumnKind.Float64
            : _bools * 10 >= _values * 9 ? ColumnKind.Boolean
            : ColumnKind.String;
    }

    private static bool TryParseDouble(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    internal static async Task<SourceBatch> ReadChunkAsync(ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        await foreach (var slice in ReadSlicesAsync(chunk, columns, (int)Math.Max(1, Math.Min(chunk.RowCount, int.MaxValue)), cancellationToken))
        {
            return slice;
        }

        return new SourceBatch(new ColumnBatch(columns.Select(c => new ColumnBuilder(c, 0).Build()).ToArray()), chunk.RowStart, []);
    }

    /// <summary>
    /// The chunk's rows in slices of at most <paramref name="sliceRows"/>, parsed as the file is read, so a caller can
    /// score one slice while the next is parsed and never holds the chunk whole. Issue rows count from the slice's start.
    /// </summary>
    internal static async IAsyncEnumerable<SourceBatch> ReadSlicesAsync(
        ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, int sliceRows,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sliceRows, 1);
        string[] header;
        await using (var headerStream = InputFile.Open(chunk.Path, useAsync: false))
        {
            header = ReadHeader(new CsvRecordReader(headerStream, chunk.Path, atFileStart: true), chunk.Path);
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
        await using var stream = InputFile.Open(chunk.Path, useAsync: false);
        if (chunk.ByteOffset > stream.Length)
        {
            throw new DatasetException(
                $"CSV file '{chunk.Path}' is {stream.Length:N0} bytes long; chunk {chunk.Index} starts at byte {chunk.ByteOffset:N0}. Was the file changed after the job was planned?");
        }

        stream.Seek(chunk.ByteOffset, SeekOrigin.Begin);
        var reader = new CsvRecordReader(stream, chunk.Path, atFileStart: chunk.ByteOffset == 0);
        for (var sliceStart = 0; sliceStart < rows; sliceStart += sliceRows)
        {
            var count = Math.Min(sliceRows, rows - sliceStart);
            var builders = columns.Select(c => new ColumnBuilder(c, count)).ToArray();
            var issues = new List<RowIssue>();
            for (var row = 0; row < count; row++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!reader.Next())
                {
                    throw new DatasetException(
                        $"CSV file '{chunk.Path}' ended after {sliceStart + row} of the {rows} rows planned for chunk {chunk.Index}. Was the file changed after the job was planned?");
                }

                if (reader.FieldCount != header.Length)
                {
                    issues.Add(new RowIssue(row, "*", $"expected {header.Length} fields, found {reader.FieldCount}"));
                    foreach (var builder in builders)
                    {
                        builder.SetNull(row);
                    }

                    continue;
                }

                for (var c = 0; c < builders.Length; c++)
                {
                    if (builders[c].Set(row, reader.Field(ordinals[c])) is { } reason)
                    {
                        issues.Add(new RowIssue(row, columns[c].Name, reason));
                    }
                }
            }

            yield return new SourceBatch(new ColumnBatch(builders.Select(b => b.Build()).ToArray()), chunk.RowStart + sliceStart, issues);
        }
    }

    /// <summary>One column's values for a slice, parsed from the field's UTF-8 bytes (numbers never become strings).</summary>
    private sealed class ColumnBuilder(SourceColumn column, int rows)
    {
        private readonly Array _values = Array.CreateInstance(BatchColumn.ArrayTypeOf(column.Kind).GetElementType()!, rows);
        private bool[]? _nulls;

        public void SetNull(int row) => (_nulls ??= new bool[rows])[row] = true;

        /// <summary>Stores the parsed value; returns why the text could not be parsed, or null.</summary>
        public string? Set(int row, ReadOnlySpan<byte> text)
        {
            if (text.IsEmpty)
            {
                SetNull(row);
                return null;
            }

            var parsed = column.Kind switch
            {
                ColumnKind.Float64 => CsvNumbers.TryParseDouble(text, out ((double[])_values)[row]),
                ColumnKind.Float32 => CsvNumbers.TryParseSingle(text, out ((float[])_values)[row]),
                ColumnKind.Int64 => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out ((long[])_values)[row]),
                ColumnKind.Int32 => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out ((int[])_values)[row]),
                ColumnKind.Boolean => TryParseBoolean(text, out ((bool[])_values)[row]),
                ColumnKind.String => Store(((string[])_values), row, text),
                _ => false,
            };
            if (parsed)
            {
                return null;
            }

            SetNull(row);
            return $"unparsable value '{Truncate(Encoding.UTF8.GetString(text))}' for {column.Kind} column '{column.Name}'";
        }

        public BatchColumn Build() => new(column.Name, column.Kind, _values, _nulls);

        private static bool Store(string[] values, int row, ReadOnlySpan<byte> text)
        {
            values[row] = Encoding.UTF8.GetString(text);
            return true;
        }

        private static bool TryParseBoolean(ReadOnlySpan<byte> text, out bool value)
        {
            if (text.Length > 64)
            {
                return bool.TryParse(Encoding.UTF8.GetString(text), out value);
            }

            Span<char> chars = stackalloc char[64];
            var count = Encoding.UTF8.GetChars(text, chars);
            return bool.TryParse(chars[..count], out value);
        }

        private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";
    }
}
