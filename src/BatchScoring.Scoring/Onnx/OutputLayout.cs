using System.Globalization;
using BatchScoring.Scoring.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace BatchScoring.Scoring.Onnx;

/// <summary>How one model output becomes result columns.</summary>
internal sealed class OutputSpec
{
    public required string OutputName { get; init; }

    /// <summary>True for seq(map(key, float)) (ZipMap): one column per map key.</summary>
    public required bool IsSequenceOfMaps { get; init; }

    /// <summary>Tensor element type, or the map's value type.</summary>
    public required TensorElementKind ElementType { get; init; }

    public required ColumnKind ColumnKind { get; init; }

    /// <summary>Values per row (tensor) or number of classes (map).</summary>
    public required int Width { get; init; }

    public required string[] ColumnNames { get; init; }

    /// <summary>Map keys (classes) in column order, as text; null for tensors.</summary>
    public string[]? Keys { get; init; }

    public long[]? Int64Keys { get; init; }
}

/// <summary>The flattened result schema of a model: which outputs are fetched and the columns they produce.</summary>
internal sealed class OutputLayout
{
    public OutputLayout(IReadOnlyList<OutputSpec> specs)
    {
        Specs = specs;
        Columns = specs.SelectMany(s => s.ColumnNames.Select(name => (name, s.ColumnKind))).ToArray();
        OutputNames = specs.Select(s => s.OutputName).ToArray();
    }

    public IReadOnlyList<OutputSpec> Specs { get; }

    public string[] OutputNames { get; }

    public IReadOnlyList<(string Name, ColumnKind Kind)> Columns { get; }

    public static bool IsSupported(TensorInfo output) => output.Kind switch
    {
        ValueKind.Tensor => ColumnKindOf(output.ElementType) is not null,
        ValueKind.Sequence => output.ElementKind == ValueKind.Map
            && output.KeyType is TensorElementKind.Int64 or TensorElementKind.String
            && output.ElementType is TensorElementKind.Float or TensorElementKind.Double,
        _ => false,
    };

    public static ColumnKind? ColumnKindOf(TensorElementKind kind) => kind switch
    {
        TensorElementKind.Float => ColumnKind.Float32,
        TensorElementKind.Double => ColumnKind.Float64,
        TensorElementKind.Int64 => ColumnKind.Int64,
        TensorElementKind.Int32 => ColumnKind.Int32,
        TensorElementKind.Bool => ColumnKind.Boolean,
        TensorElementKind.String => ColumnKind.String,
        _ => null,
    };

    /// <summary>The layout, when the signature alone determines it (tensor outputs with fixed non-batch dimensions).</summary>
    public static OutputLayout? FromSignature(IReadOnlyList<TensorInfo> outputs)
    {
        var parts = new List<(TensorInfo, int, string[]?, long[]?)>();
        foreach (var output in outputs)
        {
            var width = output.Kind == ValueKind.Tensor ? InputMapper.ValuesPerRow(output) : -1;
            if (width < 0)
            {
                return null;
            }

            parts.Add((output, (int)width, null, null));
        }

        return Build(parts);
    }

    /// <summary>The layout read off actual output values for <paramref name="rows"/> rows (rows &gt; 0).</summary>
    public static OutputLayout FromValues(IReadOnlyList<TensorInfo> outputs, IReadOnlyList<OrtValue> values, int rows)
    {
        var parts = new List<(TensorInfo, int, string[]?, long[]?)>();
        for (var o = 0; o < outputs.Count; o++)
        {
            var output = outputs[o];
            var value = values[o];
            if (output.Kind == ValueKind.Tensor)
            {
                var count = value.GetTensorTypeAndShape().ElementCount;
                parts.Add((output, (int)(count / rows), null, null));
            }
            else
            {
                using var map = value.GetValue(0, OrtAllocator.DefaultInstance);
                using var keys = map.GetValue(0, OrtAllocator.DefaultInstance);
                if (output.KeyType == TensorElementKind.Int64)
                {
                    var longKeys = keys.GetTensorDataAsSpan<long>().ToArray();
                    parts.Add((output, longKeys.Length, longKeys.Select(k => k.ToString(CultureInfo.InvariantCulture)).ToArray(), longKeys));
                }
                else
                {
                    var stringKeys = keys.GetStringTensorAsArray();
                    parts.Add((output, stringKeys.Length, stringKeys, null));
                }
            }
        }

        return Build(parts);
    }

    private static OutputLayout Build(IReadOnlyList<(TensorInfo Info, int Width, string[]? Keys, long[]? Int64Keys)> parts)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var mapOutputs = parts.Count(p => p.Info.Kind == ValueKind.Sequence);
        var specs = new List<OutputSpec>();
        foreach (var (info, width, keys, int64Keys) in parts)
        {
            string[] names;
            if (keys is not null)
            {
                var prefix = mapOutputs == 1 ? "probability" : ColumnNames.Sanitize(info.Name);
                names = keys.Select(k => Unique(ColumnNames.Sanitize($"{prefix}_{k}"), used)).ToArray();
            }
            else if (width == 1)
            {
                names = [Unique(ColumnNames.Sanitize(info.Name), used)];
            }
            else
            {
                names = Enumerable.Range(0, width).Select(k => Unique(ColumnNames.Sanitize($"{info.Name}_{k}"), used)).ToArray();
            }

            specs.Add(new OutputSpec
            {
                OutputName = info.Name,
                IsSequenceOfMaps = keys is not null,
                ElementType = info.ElementType,
                ColumnKind = ColumnKindOf(info.ElementType)!.Value,
                Width = width,
                ColumnNames = names,
                Keys = keys,
                Int64Keys = int64Keys,
            });
        }

        return new OutputLayout(specs);
    }

    private static string Unique(string name, HashSet<string> used)
    {
        var candidate = name;
        for (var i = 2; !used.Add(candidate); i++)
        {
            candidate = $"{name}_{i}";
        }

        return candidate;
    }

    /// <summary>Reads the run's outputs (in <see cref="OutputNames"/> order) into one array per result column.</summary>
    public Array[] Extract(IReadOnlyList<OrtValue> values, int rows)
    {
        var columns = new Array[Columns.Count];
        var c = 0;
        for (var o = 0; o < Specs.Count; o++)
        {
            var spec = Specs[o];
            var target = columns.AsSpan(c, spec.ColumnNames.Length);
            if (spec.IsSequenceOfMaps)
            {
                ExtractMaps(spec, values[o], rows, target);
            }
            else
            {
                ExtractTensor(spec, values[o], rows, target);
            }

            c += spec.ColumnNames.Length;
        }

        return columns;
    }

    private static void ExtractTensor(OutputSpec spec, OrtValue value, int rows, Span<Array> target)
    {
        var info = value.GetTensorTypeAndShape();
        if (info.ElementCount != (long)rows * spec.Width)
        {
            throw new InvalidOperationException(
                $"Model output '{spec.OutputName}' returned {info.ElementCount} values for {rows} rows; expected {spec.Width} per row (shape [{string.Join(", ", info.Shape)}]).");
        }

        switch (info.ElementDataType)
        {
            case TensorElementType.Float:
                Split(value.GetTensorDataAsSpan<float>(), rows, spec.Width, target);
                break;
            case TensorElementType.Double:
                Split(value.GetTensorDataAsSpan<double>(), rows, spec.Width, target);
                break;
            case TensorElementType.Int64:
                Split(value.GetTensorDataAsSpan<long>(), rows, spec.Width, target);
                break;
            case TensorElementType.Int32:
                Split(value.GetTensorDataAsSpan<int>(), rows, spec.Width, target);
                break;
            case TensorElementType.Bool:
                Split(value.GetTensorDataAsSpan<bool>(), rows, spec.Width, target);
                break;
            case TensorElementType.String:
                Split<string>(value.GetStringTensorAsArray(), rows, spec.Width, target);
                break;
            default:
                throw new InvalidOperationException($"Model output '{spec.OutputName}' has unsupported element type {info.ElementDataType}.");
        }
    }

    private static void Split<T>(ReadOnlySpan<T> data, int rows, int width, Span<Array> target)
    {
        if (width == 1)
        {
            target[0] = data[..rows].ToArray();
            return;
        }

        for (var k = 0; k < width; k++)
        {
            var column = new T[rows];
            for (var i = 0; i < rows; i++)
            {
                column[i] = data[(i * width) + k];
            }

            target[k] = column;
        }
    }

    private static void ExtractMaps(OutputSpec spec, OrtValue sequence, int rows, Span<Array> target)
    {
        var count = sequence.GetValueCount();
        if (count != rows)
        {
            throw new InvalidOperationException($"Model output '{spec.OutputName}' returned {count} maps for {rows} rows.");
        }

        var isDouble = spec.ElementType == TensorElementKind.Double;
        var floats = isDouble ? null : new float[spec.Width][];
        var doubles = isDouble ? new double[spec.Width][] : null;
        for (var k = 0; k < spec.Width; k++)
        {
            if (isDouble)
            {
                doubles![k] = new double[rows];
                target[k] = doubles[k];
            }
            else
            {
                floats![k] = new float[rows];
                target[k] = floats[k];
            }
        }

        Dictionary<string, int>? keyIndex = null;
        var allocator = OrtAllocator.DefaultInstance;
        for (var row = 0; row < rows; row++)
        {
            using var map = sequence.GetValue(row, allocator);
            using var keys = map.GetValue(0, allocator);
            using var values = map.GetValue(1, allocator);
            var n = (int)keys.GetTensorTypeAndShape().ElementCount;
            var longKeys = spec.Int64Keys is null ? default : keys.GetTensorDataAsSpan<long>();
            for (var j = 0; j < n; j++)
            {
                int column;
                if (spec.Int64Keys is { } expected)
                {
                    column = j < expected.Length && expected[j] == longKeys[j]
                        ? j
                        : Lookup(spec, longKeys[j].ToString(CultureInfo.InvariantCulture), ref keyIndex);
                }
                else
                {
                    var key = keys.GetStringElement(j);
                    column = j < spec.Keys!.Length && spec.Keys[j] == key ? j : Lookup(spec, key, ref keyIndex);
                }

                if (isDouble)
                {
                    doubles![column][row] = values.GetTensorDataAsSpan<double>()[j];
                }
                else
                {
                    floats![column][row] = values.GetTensorDataAsSpan<float>()[j];
                }
            }
        }
    }

    private static int Lookup(OutputSpec spec, string key, ref Dictionary<string, int>? index)
    {
        index ??= spec.Keys!.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => p.i, StringComparer.Ordinal);
        return index.TryGetValue(key, out var column)
            ? column
            : throw new InvalidOperationException($"Model output '{spec.OutputName}' returned class '{key}', which is not among the classes seen first ({string.Join(", ", spec.Keys!)}).");
    }
}
