namespace BatchScoring.Scoring.Data;

/// <summary>
/// Finds where every <c>chunkRows</c>-th data record of a CSV file starts, block by block, skipping from one quote or
/// line feed to the next with vectorised searches. A record starts at the first byte after a line feed (outside quotes)
/// that is neither a line feed nor a carriage return; the first line feed outside quotes ends the header.
/// </summary>
internal sealed class CsvChunkPlanner(int chunkRows, string path)
{
    private bool _inQuotes;
    private bool _atRecordStart = true;

    public bool HeaderDone { get; private set; }

    public long Rows { get; private set; }

    public List<long> Offsets { get; } = [];

    /// <summary>Scans the next block of the file, which starts at byte <paramref name="blockPosition"/>.</summary>
    public void Scan(ReadOnlySpan<byte> block, long blockPosition)
    {
        var i = 0;
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
                    HeaderDone |= b == (byte)'\n';
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
