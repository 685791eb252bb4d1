using System.Globalization;
using System.Numerics;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Onnx;

/// <summary>Per-row checks before a batch is run: nulls, non-finite numbers, list lengths, int32 range.</summary>
internal static class RowValidator
{
    public static void Validate(BoundColumn bound, bool allowNonFinite, bool[] bad, List<RowFailure> failures)
    {
        var column = bound.Column;
        var name = column.Name;
        var nulls = column.Nulls;
        void Fail(int row, string reason)
        {
            bad[row] = true;
            failures.Add(new RowFailure(row, name, reason));
        }

        bool Skip(int row)
        {
            if (bad[row])
            {
                return true;
            }

            if (nulls is not null && nulls[row])
            {
                Fail(row, $"null value in column '{name}'");
                return true;
            }

            return false;
        }

        switch (column.Values)
        {
            // Most batches: no nulls and every value finite, so no row can fail; one vectorised scan instead of per-row checks.
            case float[] a when nulls is null && (allowNonFinite || AllFinite<float>(a)):
                break;
            case double[] a when nulls is null && (allowNonFinite || AllFinite<double>(a)):
                break;
            case float[] a:
                for (var i = 0; i < a.Length; i++)
                {
                    if (!Skip(i) && !allowNonFinite && !float.IsFinite(a[i]))
                    {
                        Fail(i, $"non-finite value {a[i].ToString(CultureInfo.InvariantCulture)} in column '{name}'");
                    }
                }

                break;
            case double[] a:
                for (var i = 0; i < a.Length; i++)
                {
                    if (!Skip(i) && !allowNonFinite && !double.IsFinite(a[i]))
                    {
                        Fail(i, $"non-finite value {a[i].ToString(CultureInfo.InvariantCulture)} in column '{name}'");
                    }
                }

                break;
            case long[] a when bound.Input.ElementType == TensorElementKind.Int32:
                for (var i = 0; i < a.Length; i++)
                {
                    if (!Skip(i) && a[i] is < int.MinValue or > int.MaxValue)
                    {
                        Fail(i, $"value {a[i].ToString(CultureInfo.InvariantCulture)} in column '{name}' is out of range for int32 input '{bound.Input.Name}'");
                    }
                }

                break;
            case string?[] a:
                for (var i = 0; i < a.Length; i++)
                {
                    if (!Skip(i) && a[i] is null)
                    {
                        Fail(i, $"null value in column '{name}'");
                    }
                }

                break;
            case float[]?[] lists:
                for (var i = 0; i < lists.Length; i++)
                {
                    if (Skip(i))
                    {
                        continue;
                    }

                    var list = lists[i];
                    if (list is null)
                    {
                        Fail(i, $"null value in column '{name}'");
                    }
                    else if (list.Length != bound.ListLength)
                    {
                        Fail(i, $"list in column '{name}' has {list.Length} values, expected {bound.ListLength}");
                    }
                    else if (!allowNonFinite)
                    {
                        for (var k = 0; k < list.Length; k++)
                        {
                            if (!float.IsFinite(list[k]))
                            {
                                Fail(i, $"non-finite value {list[k].ToString(CultureInfo.InvariantCulture)} in column '{name}' (element {k})");
                                break;
                            }
                        }
                    }
                }

                break;
            default:
                for (var i = 0; i < column.Length; i++)
                {
                    Skip(i);
                }

                break;
        }
    }

    /// <summary>True when no value is NaN or ±infinity (x − x is 0 for finite x, NaN otherwise).</summary>
    private static bool AllFinite<T>(ReadOnlySpan<T> values)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= values.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var v = new Vector<T>(values[i..]);
                if (!Vector.EqualsAll(v - v, Vector<T>.Zero))
                {
                    return false;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if (!T.IsFinite(values[i]))
            {
                return false;
            }
        }

        return true;
    }
}
