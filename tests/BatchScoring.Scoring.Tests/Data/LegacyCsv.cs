using System.Text;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

/// <summary>The CSV planner and record parser as they were before the byte-level rewrite: the reference for equality tests.</summary>
internal static class LegacyCsv
{
    /// <summary>Byte offsets of every <paramref name="chunkRows"/>-th data record, and the data record count.</summary>
    public static async Task<(List<long> Offsets, long Rows)> PlanAsync(string path, int chunkRows, CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(path);
        // Only the bytes present when planning starts: a device or a file still being written cannot make planning endless.
        var length = stream.Length;
        var offsets = new List<long>();
        long rows = 0;
        var inQuotes = false;
        var atRecordStart = true;
        var headerDone = false;
        long position = 0;
        var buffer = new byte[1 << 16];
        int read;
        while (position < length && (read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - position)), cancellationToken)) > 0)
        {
            for (var i = 0; i < read; i++, position++)
            {
                var b = buffer[i];
                if (atRecordStart && b != (byte)'\n' && b != (byte)'\r')
                {
                    atRecordStart = false;
                    if (headerDone)
                    {
                        if (rows % chunkRows == 0)
                        {
                            offsets.Add(position);
                        }

                        rows++;
                    }
                }

                if (b == (byte)'"')
                {
                    inQuotes = !inQuotes;
                }
                else if (b == (byte)'\n' && !inQuotes)
                {
                    atRecordStart = true;
                    headerDone = true;
                }
            }
        }

        return (offsets, rows);
    }

    /// <summary>Every record of the file (header first), as the old parser returned them.</summary>
    public static List<IReadOnlyList<string>> ReadAll(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        var parser = new LegacyCsvRecordParser(reader, path);
        var records = new List<IReadOnlyList<string>>();
        while (parser.Next() is { } record)
        {
            records.Add(record);
        }

        return records;
    }
}

/// <summary>The record parser CsvDataset had before it parsed bytes (kept verbatim as the reference the new reader is checked against).</summary>
internal sealed class LegacyCsvRecordParser(TextReader reader, string path)
{
    private const int MaxRecordLength = CsvDataset.MaxRecordLength;

    private readonly StringBuilder _field = new();
    private readonly List<string> _record = [];
    private int _length;

    public IReadOnlyList<string>? Next()
    {
        _record.Clear();
        _field.Clear();
        _length = 0;
        var inQuotes = false;
        var any = false;
        while (true)
        {
            var ch = reader.Read();
            if (++_length > MaxRecordLength)
            {
                throw new DatasetException(
                    $"CSV file '{path}' has a record longer than {MaxRecordLength:N0} characters{(inQuotes ? " (a quote is never closed)" : string.Empty)}; is it a CSV file?");
            }

            if (ch < 0)
            {
                if (!any)
                {
                    return null;
                }

                _record.Add(_field.ToString());
                return [.. _record];
            }

            any = true;
            var c = (char)ch;
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        _field.Append('"');
                    }
                    else
                    {
                        inQuotes = false;
                    }
                }
                else
                {
                    _field.Append(c);
                }

                continue;
            }

            switch (c)
            {
                case '"':
                    inQuotes = true;
                    break;
                case ',':
                    _record.Add(_field.ToString());
                    _field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    if (_record.Count == 0 && _field.Length == 0)
                    {
                        any = false;
                        continue; // blank line
                    }

                    _record.Add(_field.ToString());
                    return [.. _record];
                default:
                    _field.Append(c);
                    break;
            }
        }
    }
}
