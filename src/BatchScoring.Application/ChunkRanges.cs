using System.Text.Json;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Application;

/// <summary>
/// The ranges of a combined chunk on their way from the plan to a worker: planned (<see cref="ChunkSpec.Ranges"/>),
/// stored (<c>scoring.chunks.ranges</c>, JSON), sent (<see cref="ScoreChunk.Ranges"/>) and read back into a spec.
/// </summary>
public static class ChunkRanges
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The stored form of a planned chunk's ranges; null for a chunk of one slice.</summary>
    public static string? ToJson(ChunkSpec chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        return chunk.Ranges is { Count: > 1 } ranges
            ? JsonSerializer.Serialize(ranges.Select(r => new ScoreChunkRange(r.Path, r.RowGroup, r.RowStart, r.RowCount, r.ByteOffset)), Json)
            : null;
    }

    /// <summary>The chunk message of a stored chunk (the reconciler and retries re-send exactly what was planned).</summary>
    public static ScoreChunk ToMessage(ChunkEntity chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        return new ScoreChunk(chunk.JobId, chunk.ChunkIndex, chunk.SourcePath, chunk.RowGroup, chunk.RowStart, chunk.RowCount, chunk.ByteOffset)
        {
            Ranges = chunk.Ranges is null ? null : JsonSerializer.Deserialize<ScoreChunkRange[]>(chunk.Ranges, Json),
        };
    }

    /// <summary>What a worker reads for a chunk message: its ranges, or the one slice its fields name.</summary>
    public static ChunkSpec ToSpec(ScoreChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        var spec = new ChunkSpec(chunk.ChunkIndex, chunk.Path, chunk.RowGroup, chunk.RowStart, chunk.RowCount, chunk.ByteOffset);
        if (chunk.Ranges is not { Count: > 0 } ranges)
        {
            return spec;
        }

        if (ranges.Any(r => r is null || r.Path is null) || ranges.Sum(r => r.RowCount) != chunk.RowCount)
        {
            // The fields are what an older worker reads: a list that disagrees with them is not a chunk this service sent.
            throw new DatasetException($"Chunk {chunk.ChunkIndex}: its ranges do not add up to its {chunk.RowCount} rows.");
        }

        return spec with { Ranges = ranges.Select(r => new ChunkRange(r.Path, r.RowGroup, r.RowStart, r.RowCount, r.ByteOffset)).ToArray() };
    }
}
