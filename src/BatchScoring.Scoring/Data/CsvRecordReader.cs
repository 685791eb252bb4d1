using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// Reads RFC 4180 records straight from UTF-8 bytes: quoted fields may hold commas, doubled quotes and line breaks.
/// Fields are spans over the read buffer (valid until the next <see cref="Next"/>), so numbers parse without a string
/// per field. The record rules are the planner's (<see cref="CsvChunkPlanner"/>): a record ends at a line feed outside
/// quotes, carriage returns outside quotes are dropped, a line of nothing but carriage returns is blank and skipped
/// (a line holding only <c>""</c> is a record: one empty field), and a quote opens a quoted part anywhere in a field.
/// </summary>
internal sealed class CsvRecordReader
{
    private const int MaxRecordLength = CsvDataset.MaxRecordLength;
    private const int InitialBuffer = 1 << 20;

    private readonly Stream _stream;
    private readonly string _path;
    private byte[] _buffer = new byte[InitialBuffer];
    private int _start;
    private int _end;
    private bool _eof;
    // A UTF-8 byte order mark is not data at the file's start; at a chunk's start the same bytes are a row's first characters.
    private bool _skipBom;

    private byte[] _scratch = [];
    private bool _inScratch;
    private int[] _fieldStarts = new int[64];
    private int[] _fieldEnds = new int[64];

    /// <param name="stream">The file, positioned at its start or at a record's start.</param>
    /// <param name="path">The file's path, for errors.</param>
    /// <param name="atFileStart">Whether <paramref name="stream"/> is at the file's start, where a byte order mark is skipped.</param>
    public CsvRecordReader(Stream stream, string path, bool atFileStart)
    {
        _stream = stream;
        _path = path;
        _skipBom = atFileStart;
    }

    public int FieldCount { get; private set; }

    public ReadOnlySpan<byte> Field(int index) =>
        (_inScratch ? _scratch : _buffer).AsSpan(_fieldStarts[index], _fieldEnds[index] - _fieldStarts[index]);

    public string FieldString(int index) => Encoding.UTF8.GetString(Field(index));

    public string[] RecordStrings()
    {
        var fields = new string[FieldCount];
        for (var i = 0; i < fields.Length; i++)
        {
            fields[i] = FieldString(i);
        }

        return fields;
    }

    /// <summary>Moves to the next record; false at the end of the stream.</summary>
    public bool Next()
    {
        if (_skipBom)
        {
            SkipByteOrderMark();
        }

        while (true)
        {
            var recordStart = _start;
            var pos = recordStart;
            var inQuotes = false;
            var hasQuote = false;
            int lineEnd;
            while (true)
            {
                // A record may be at most MaxRecordLength bytes, counting its line feed (or the end of the file).
                var limit = (int)Math.Min(_end, (long)recordStart + MaxRecordLength);
                var found = -1;
                while (pos < limit)
                {
                    var span = _buffer.AsSpan(pos, limit - pos);
                    if (inQuotes)
                    {
                        var q = span.IndexOf((byte)'"');
                        if (q < 0)
                        {
                            pos = limit;
                            break;
                        }

                        pos += q + 1;
                        inQuotes = false;
                        continue;
                    }

                    var k = span.IndexOfAny((byte)'"', (byte)'\n');
                    if (k < 0)
                    {
                        pos = limit;
                        break;
                    }

                    pos += k;
                    if (_buffer[pos] == (byte)'"')
                    {
                        hasQuote = true;
                        inQuotes = true;
                        pos++;
                        continue;
                    }

                    found = pos;
                    break;
                }

                if (found >= 0)
                {
                    lineEnd = found;
                    break;
                }

                if (limit - recordStart >= MaxRecordLength)
                {
                    throw new DatasetException(
                        $"CSV file '{_path}' has a record longer than {MaxRecordLength:N0} characters{(inQuotes ? " (a quote is never closed)" : string.Empty)}; is it a CSV file?");
                }

                if (_eof)
                {
                    lineEnd = _end;
                    break;
                }

                var shift = recordStart;
                Fill();
                recordStart -= shift;
                pos -= shift;
            }

            var atEof = lineEnd == _end && _eof;
            if (atEof && lineEnd == recordStart)
            {
                FieldCount = 0;
                return false;
            }

            _start = atEof ? _end : lineEnd + 1;
            var content = _buffer.AsSpan(recordStart, lineEnd - recordStart);
            if (!hasQuote && content.Length > 0 && content[^1] == (byte)'\r')
            {
                content = content[..^1];
            }

            // The planner's blank line, wherever it is (before the header, at the end of the file): carriage returns only.
            if (!hasQuote && content.IndexOfAnyExcept((byte)'\r') < 0)
            {
                continue;
            }

            if (hasQuote || content.Contains((byte)'\r'))
            {
                SplitQuoted(_buffer.AsSpan(recordStart, lineEnd - recordStart));
            }
            else
            {
                Split(content, recordStart);
            }

            return true;
        }
    }

    private void Split(ReadOnlySpan<byte> content, int offset)
    {
        _inScratch = false;
        FieldCount = 0;
        var fieldStart = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // Fields are short: one compare per 32 bytes finds all their commas, where IndexOf per field would start over each time.
            ref var first = ref MemoryMarshal.GetReference(content);
            var commas = Vector256.Create((byte)',');
            for (; i + Vector256<byte>.Count <= content.Length; i += Vector256<byte>.Count)
            {
                var mask = Vector256.Equals(Vector256.LoadUnsafe(ref first, (nuint)i), commas).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    var comma = i + BitOperations.TrailingZeroCount(mask);
                    AddField(offset + fieldStart, offset + comma);
                    fieldStart = comma + 1;
                    mask &= mask - 1;
                }
            }
        }

        for (; i < content.Length; i++)
        {
            if (content[i] == (byte)',')
            {
                AddField(offset + fieldStart, offset + i);
                fieldStart = i + 1;
            }
        }

        AddField(offset + fieldStart, offset + content.Length);
    }

    /// <summary>The slow path, byte by byte: quoted parts, doubled quotes and stray carriage returns.</summary>
    private void SplitQuoted(ReadOnlySpan<byte> record)
    {
        _inScratch = true;
        FieldCount = 0;
        if (_scratch.Length < record.Length)
        {
            _scratch = new byte[Math.Max(record.Length, 4096)];
        }

        var output = 0;
        var fieldStart = 0;
        var inQuotes = false;
        for (var i = 0; i < record.Length; i++)
        {
            var b = record[i];
            if (inQuotes)
            {
                if (b == (byte)'"')
                {
                    if (i + 1 < record.Length && record[i + 1] == (byte)'"')
                    {
                        _scratch[output++] = b;
                        i++;
                    }
                    else
                    {
                        inQuotes = false;
                    }
                }
                else
                {
                    _scratch[output++] = b;
                }

                continue;
            }

            switch (b)
            {
                case (byte)'"':
                    inQuotes = true;
                    break;
                case (byte)',':
                    AddField(fieldStart, output);
                    fieldStart = output;
                    break;
                case (byte)'\r':
                    break;
                default:
                    _scratch[output++] = b;
                    break;
            }
        }

        AddField(fieldStart, output);
    }

    private void AddField(int start, int end)
    {
        if (FieldCount == _fieldStarts.Length)
        {
            Array.Resize(ref _fieldStarts, FieldCount * 2);
            Array.Resize(ref _fieldEnds, FieldCount * 2);
        }

        _fieldStarts[FieldCount] = start;
        _fieldEnds[FieldCount] = end;
        FieldCount++;
    }

    private void SkipByteOrderMark()
    {
        _skipBom = false;
        while (_end < 3 && !_eof)
        {
            Fill();
        }

        if (_end >= 3 && _buffer[0] == 0xEF && _buffer[1] == 0xBB && _buffer[2] == 0xBF)
        {
            _start = 3;
        }
    }

    /// <summary>Keeps the unread bytes, moved to the buffer's start (growing it when a record fills it), and reads more.</summary>
    private void Fill()
    {
        var kept = _end - _start;
        if (kept == _buffer.Length)
        {
            var grown = new byte[(int)Math.Min((long)_buffer.Length * 2, MaxRecordLength + (long)InitialBuffer)];
            Buffer.BlockCopy(_buffer, _start, grown, 0, kept);
            _buffer = grown;
        }
        else if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, kept);
        }

        _start = 0;
        _end = kept;
        var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
        _end += read;
        _eof = read == 0;
    }
}
