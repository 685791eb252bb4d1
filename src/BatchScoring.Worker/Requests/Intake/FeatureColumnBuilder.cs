using System.Globalization;
using System.Text.Json;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>Fills one typed column of a model feature from a request's JSON (or CLR) values.</summary>
internal sealed class FeatureColumnBuilder(RequestFeature feature, int rows)
{
    private readonly Array _values = feature.Kind switch
    {
        ColumnKind.Float32 => new float[rows],
        ColumnKind.Float64 => new double[rows],
        ColumnKind.Int32 => new int[rows],
        ColumnKind.Int64 => new long[rows],
        ColumnKind.Boolean => new bool[rows],
        ColumnKind.String => new string[rows],
        ColumnKind.Float32List => new float[rows][],
        _ => Array.CreateInstance(BatchColumn.ArrayTypeOf(feature.Kind).GetElementType()!, rows),
    };
    private bool[]? _nulls;

    public RequestFeature Feature { get; } = feature;

    public BatchColumn Build() => new(Feature.Name, Feature.Kind, _values, _nulls);

    /// <summary>Stores the value of row <paramref name="row"/>; returns a problem text when it has the wrong type.</summary>
    public string? Set(int row, object? value)
    {
        if (value is JsonElement element)
        {
            value = element.ValueKind switch
            {
                JsonValueKind.Null or JsonValueKind.Undefined => null,
                _ => element,
            };
        }

        if (value is null)
        {
            (_nulls ??= new bool[_values.Length])[row] = true;
            return null;
        }

        switch (Feature.Kind)
        {
            case ColumnKind.Float32:
            case ColumnKind.Float64:
                if (!TryGetDouble(value, out var number))
                {
                    return $"must be a number, got {Kind(value)}";
                }

                if (Feature.Kind == ColumnKind.Float32)
                {
                    ((float[])_values)[row] = (float)number;
                }
                else
                {
                    ((double[])_values)[row] = number;
                }

                return null;
            case ColumnKind.Int32:
            case ColumnKind.Int64:
                if (!TryGetInteger(value, out var integer) || (Feature.Kind == ColumnKind.Int32 && integer is < int.MinValue or > int.MaxValue))
                {
                    return $"must be an integer, got {Kind(value)}";
                }

                if (Feature.Kind == ColumnKind.Int32)
                {
                    ((int[])_values)[row] = (int)integer;
                }
                else
                {
                    ((long[])_values)[row] = integer;
                }

                return null;
            case ColumnKind.Boolean:
                bool? flag = value switch
                {
                    bool b => b,
                    JsonElement { ValueKind: JsonValueKind.True } => true,
                    JsonElement { ValueKind: JsonValueKind.False } => false,
                    _ => null,
                };
                if (flag is null)
                {
                    return $"must be a boolean, got {Kind(value)}";
                }

                ((bool[])_values)[row] = flag.Value;
                return null;
            case ColumnKind.String:
                var text = value switch
                {
                    string s => s,
                    JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
                    _ => null,
                };
                if (text is null)
                {
                    return $"must be a string, got {Kind(value)}";
                }

                ((string[])_values)[row] = text;
                return null;
            case ColumnKind.Float32List:
                var list = ToFloatList(value);
                if (list is null)
                {
                    return $"must be an array of numbers, got {Kind(value)}";
                }

                if (Feature.ListLength > 0 && list.Length != Feature.ListLength)
                {
                    return $"must have {Feature.ListLength} values, got {list.Length}";
                }

                ((float[][])_values)[row] = list;
                return null;
            default:
                return $"has an unsupported type {Feature.Kind}";
        }
    }

    public static bool IsNull(object? value) => value is null or JsonElement { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined };

    public static bool TryGetDouble(object value, out double number)
    {
        switch (value)
        {
            case JsonElement { ValueKind: JsonValueKind.Number } e:
                number = e.GetDouble();
                return true;
            case JsonElement { ValueKind: JsonValueKind.String } e:
                return TryNonFinite(e.GetString(), out number);
            case JsonElement { ValueKind: JsonValueKind.True }:
                number = 1;
                return true;
            case JsonElement { ValueKind: JsonValueKind.False }:
                number = 0;
                return true;
            case bool b:
                number = b ? 1 : 0;
                return true;
            case string s:
                return TryNonFinite(s, out number);
            case IConvertible c when value is double or float or int or long or short or byte or decimal or uint or ulong or ushort or sbyte:
                number = c.ToDouble(CultureInfo.InvariantCulture);
                return true;
            default:
                number = 0;
                return false;
        }
    }

    // JSON has no NaN/Infinity literals: they arrive as strings, and the row then fails as non-finite.
    private static bool TryNonFinite(string? text, out double number)
    {
        number = text switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => 0,
        };
        return text is "NaN" or "Infinity" or "-Infinity";
    }

    private static bool TryGetInteger(object value, out long integer)
    {
        switch (value)
        {
            case JsonElement { ValueKind: JsonValueKind.Number } e when e.TryGetInt64(out integer):
                return true;
            case JsonElement { ValueKind: JsonValueKind.True }:
                integer = 1;
                return true;
            case JsonElement { ValueKind: JsonValueKind.False }:
                integer = 0;
                return true;
            case bool b:
                integer = b ? 1 : 0;
                return true;
            case int or long or short or byte or uint or sbyte or ushort:
                integer = Convert.ToInt64(value, CultureInfo.InvariantCulture);
                return true;
            default:
                integer = 0;
                return false;
        }
    }

    private static float[]? ToFloatList(object value)
    {
        switch (value)
        {
            case float[] floats:
                return floats;
            case double[] doubles:
                return Array.ConvertAll(doubles, d => (float)d);
            case JsonElement { ValueKind: JsonValueKind.Array } array:
                var result = new float[array.GetArrayLength()];
                var i = 0;
                foreach (var item in array.EnumerateArray())
                {
                    if (!TryGetDouble(item, out var number))
                    {
                        return null;
                    }

                    result[i++] = (float)number;
                }

                return result;
            default:
                return null;
        }
    }

    public static string Kind(object value) => value switch
    {
        JsonElement e => e.ValueKind switch
        {
            JsonValueKind.String => $"string \"{Truncate(e.GetString())}\"",
            JsonValueKind.Number => $"number {e.GetRawText()}",
            JsonValueKind.True or JsonValueKind.False => "boolean",
            JsonValueKind.Array => "array",
            JsonValueKind.Object => "object",
            _ => e.ValueKind.ToString().ToLowerInvariant(),
        },
        string s => $"string \"{Truncate(s)}\"",
        _ => value.GetType().Name,
    };

    private static string? Truncate(string? text) => text is { Length: > 40 } ? text[..40] + "…" : text;
}
