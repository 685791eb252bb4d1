using System.Buffers;
using Parquet;
using Parquet.Schema;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// Reads an optional (nullable) flat Parquet column straight into the column's array. Parquet.Net's nullable read
/// fills a <c>T?[]</c> (for a 16k-row float column a 128 KiB large-object allocation, per column and row group) that
/// was then copied into the column value by value; profiled, those copies and the background GCs that the large
/// allocations set off were a tenth of a light job's CPU. Writers such as DuckDB mark every column optional.
/// </summary>
internal static class ParquetNullableReads
{
    /// <summary>True when <see cref="ReadAsync{T}"/> can read <paramref name="field"/>.</summary>
    public static bool Supports(DataField field) => field.MaxDefinitionLevel > 0 && field.MaxRepetitionLevel == 0;

    /// <summary>Fills <paramref name="values"/> (one per row; default where null) and returns the null mask, or null when no value is null.</summary>
    public static async Task<bool[]?> ReadAsync<T>(ParquetRowGroupReader reader, DataField field, T[] values, CancellationToken cancellationToken)
        where T : struct
    {
        var rows = values.Length;
        var levels = ArrayPool<int>.Shared.Rent(Math.Max(rows, 1));
        try
        {
            // The defined values arrive packed at the start of the array, with one definition level per row.
            await reader.ReadRawAsync(field, values.AsMemory(), levels.AsMemory(0, rows), null, cancellationToken);
            var max = field.MaxDefinitionLevel;
            var defined = 0;
            for (var i = 0; i < rows; i++)
            {
                if (levels[i] >= max)
                {
                    defined++;
                }
            }

            if (defined == rows)
            {
                return null;
            }

            // Spread the packed values to their rows from the end, so no value is overwritten before it moves.
            var nulls = new bool[rows];
            var next = defined - 1;
            for (var i = rows - 1; i >= 0; i--)
            {
                if (levels[i] >= max)
                {
                    values[i] = values[next--];
                }
                else
                {
                    values[i] = default;
                    nulls[i] = true;
                }
            }

            return nulls;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(levels);
        }
    }
}
