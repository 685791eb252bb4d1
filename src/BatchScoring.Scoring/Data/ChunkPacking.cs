namespace BatchScoring.Scoring.Data;

/// <summary>
/// Packs the slices a plan found (Parquet row groups, CSV row ranges) into job chunks of up to a row budget, so that
/// files written with small row groups, or many small files, do not make many small chunks (each one a message, a
/// transaction and a commit round trip).
/// </summary>
public static class ChunkPacking
{
    /// <summary>
    /// Whole slices in plan order, packed until the next one would exceed <paramref name="chunkRows"/>; a chunk may span
    /// files. Slices are never cut here (the planners already cut row groups larger than the budget), so a chunk of one
    /// slice keeps exactly the fields it had, and only chunks of several slices carry <see cref="ChunkSpec.Ranges"/>.
    /// </summary>
    public static IReadOnlyList<ChunkSpec> Combine(IReadOnlyList<ChunkSpec> slices, int chunkRows)
    {
        ArgumentNullException.ThrowIfNull(slices);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        var chunks = new List<ChunkSpec>();
        var current = new List<ChunkSpec>();
        long rows = 0;
        foreach (var slice in slices)
        {
            if (current.Count > 0 && rows + slice.RowCount > chunkRows)
            {
                Flush();
            }

            current.Add(slice);
            rows += slice.RowCount;
        }

        Flush();
        return chunks;

        void Flush()
        {
            if (current.Count == 0)
            {
                return;
            }

            var first = current[0];
            chunks.Add(current.Count == 1
                ? first with { Index = chunks.Count }
                : new ChunkSpec(chunks.Count, first.Path, first.RowGroup, first.RowStart, rows, first.ByteOffset)
                {
                    Ranges = current.Select(s => new ChunkRange(s.Path, s.RowGroup, s.RowStart, s.RowCount, s.ByteOffset)).ToArray(),
                });
            current.Clear();
            rows = 0;
        }
    }
}
