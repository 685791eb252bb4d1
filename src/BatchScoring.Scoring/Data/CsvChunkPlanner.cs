namespace BatchScoring.Scoring.Data;

/// <summary>
/// Finds where every <c>chunkRows</c>-th data record of a CSV file starts, block by block, skipping from one quote or
/// line feed to the next with vectorised searches. The rules are the reader's (<see cref="CsvRecordReader"/>): a UTF-8
/// byte order mark at the file's start is skipped; a line of nothing but carriage returns is blank; any other line
/// (even one holding only <c>""</c>) is a record, which starts at its first byte that is neither a line feed nor a
/// carriage return; the first record is the header.
/// </summary>
internal sealed class CsvChunkPlanner(int chunkRows, string path)
{
    private bool _inQuotes;
    private bool _atRecordStart = true;

    public bool HeaderDone { get; private set; }

    public long Rows { get; private set; }

    public List<long> Offsets { get; } = [];

    private static ReadOnlySpan<byte> ByteOrderMark => [0xEF, 0xBB, 0xBF];

    /// <summary>Scans the next block of the file, which starts at byte <paramref name="blockPosition"/> (the first block holds at least 3 bytes, or the whole file).</summary>
    public void Scan(ReadOnlySpan<byte> block, long blockPosition)
    {
        var i = blockPosition == 0 && block.StartsWith(ByteOrderMark) ? ByteOrderMark.Length : 0;
        while (i < block.Length)
        {
            if (_inQuotes)
            {
                var quote = block[i..].IndexOf((byte)'"');
                if (quote < 0)
                {
                    return;
                }

                i += quote + 1;
                _inQuotes = false;
                continue;
            }

            if (_atRecordStart)
            {
                var b = block[i];
                if (b is (byte)'\n' or (byte)'\r')
                {
                    // A blank line, also before the header: only a record's line feed ends the header.
                    i++;
                    continue;
                }

                _atRecordStart = false;
                if (HeaderDone)
                {
                    StartRecord(blockPosition + i);
                }
            }

            var next = block[i..].IndexOfAny((byte)'"', (byte)'\n');
            if (next < 0)
            {
                return;
            }

            i += next;
            if (block[i] == (byte)'"')
            {
                _inQuotes = true;
            }
            else
            {
                _atRecordStart = true;
                HeaderDone = true;
            }

            i++;
        }
    }

    private void StartRecord(long position)
    {
        if (Rows % chunkRows == 0)
        {
            if (Offsets.Count >= Dataset.MaxChunks)
            {
                throw new DatasetException($"CSV file '{path}' would make more than {Dataset.MaxChunks:N0} chunks; use larger chunks (ChunkRows).");
            }

            Offsets.Add(position);
        }

        Rows++;
    }
}
