using BatchScoring.Scoring.Data;

namespace BatchScoring.Application.Drift;

/// <summary>Feeds a typed column's values to a profile or an accumulator.</summary>
internal static class ColumnValues
{
    /// <summary>Rows <paramref name="rows"/> of the column (all rows when null).</summary>
    public static void Feed(BatchColumn column, int[]? rows, Action<double> number, Action<string?> text, Action missing)
    {
        var count = rows?.Length ?? column.Length;
        for (var i = 0; i < count; i++)
        {
            var row = rows is null ? i : rows[i];
            if (column.IsNull(row))
            {
                missing();
                continue;
            }

            switch (column.Values)
            {
                case float[] floats:
                    number(floats[row]);
                    break;
                case double[] doubles:
                    number(doubles[row]);
                    break;
                case int[] ints:
                    number(ints[row]);
                    break;
                case long[] longs:
                    number(longs[row]);
                    break;
                case bool[] flags:
                    number(flags[row] ? 1 : 0);
                    break;
                case string?[] strings:
                    text(strings[row]);
                    break;
                default:
                    missing();
                    break;
            }
        }
    }
}
