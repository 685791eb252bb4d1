using System.Buffers;
using System.Numerics;
using BatchScoring.Scoring.Data;
using Microsoft.ML.OnnxRuntime;

namespace BatchScoring.Scoring.Onnx;

/// <summary>A column resolved against one batch, ready to be gathered into an input tensor.</summary>
internal sealed record BoundColumn(InputBinding Binding, BatchColumn Column, TensorInfo Input, int ListLength);

/// <summary>Input OrtValues for one Run, with their pooled buffers; disposing releases both.</summary>
internal sealed class InputTensors : IDisposable
{
    private readonly List<Action> _release = [];

    public List<string> Names { get; } = [];

    public List<OrtValue> Values { get; } = [];

    public void Dispose()
    {
        foreach (var value in Values)
        {
            value.Dispose();
        }

        Values.Clear();
        foreach (var release in _release)
        {
            release();
        }

        _release.Clear();
    }

    /// <summary>Builds the inputs for the given batch rows.</summary>
    public static InputTensors Build(InputMapping mapping, IReadOnlyList<BoundColumn> bound, ReadOnlySpan<int> rows)
    {
        var tensors = new InputTensors();
        try
        {
            if (mapping.Mode == InputMappingMode.FeatureColumns)
            {
                var input = bound[0].Input;
                if (input.ElementType == TensorElementKind.Double)
                {
                    tensors.AddFeatureMatrix<double>(input.Name, bound, rows);
                }
                else
                {
                    tensors.AddFeatureMatrix<float>(input.Name, bound, rows);
                }
            }
            else
            {
                foreach (var column in bound)
                {
                    tensors.AddColumn(column, rows);
                }
            }

            return tensors;
        }
        catch
        {
            tensors.Dispose();
            throw;
        }
    }

    /// <summary>Zero / empty-string inputs of one row for every model input, to discover the output layout.</summary>
    public static InputTensors Probe(IReadOnlyList<TensorInfo> inputs)
    {
        var tensors = new InputTensors();
        try
        {
            foreach (var input in inputs)
            {
                var shape = input.Shape.Select(d => d < 0 ? 1L : d).ToArray();
                var size = (int)shape.Aggregate(1L, (a, b) => a * b);
                OrtValue value = input.ElementType switch
                {
                    TensorElementKind.Float => OrtValue.CreateTensorValueFromMemory(new float[size], shape),
                    TensorElementKind.Double => OrtValue.CreateTensorValueFromMemory(new double[size], shape),
                    TensorElementKind.Int64 => OrtValue.CreateTensorValueFromMemory(new long[size], shape),
                    TensorElementKind.Int32 => OrtValue.CreateTensorValueFromMemory(new int[size], shape),
                    TensorElementKind.Bool => OrtValue.CreateTensorValueFromMemory(new bool[size], shape),
                    TensorElementKind.String => OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape),
                    _ => throw new NotSupportedException($"Input '{input.Name}' has unsupported element type {input.ElementType}."),
                };
                tensors.Names.Add(input.Name);
                tensors.Values.Add(value);
            }

            return tensors;
        }
        catch
        {
            tensors.Dispose();
            throw;
        }
    }

    private void AddFeatureMatrix<T>(string inputName, IReadOnlyList<BoundColumn> bound, ReadOnlySpan<int> rows)
        where T : unmanaged, INumberBase<T>
    {
        var f = bound.Count;
        var n = rows.Length;
        var buffer = Rent<T>(n * f);
        var span = buffer.AsSpan(0, n * f);
        // Row blocks keep the destination rows in cache while each column's values are scattered into them.
        const int blockRows = 256;
        for (var start = 0; start < n; start += blockRows)
        {
            var count = Math.Min(blockRows, n - start);
            var blockRowsSpan = rows.Slice(start, count);
            var target = span.Slice(start * f, count * f);
            for (var j = 0; j < f; j++)
            {
                Gather(bound[j].Column, blockRowsSpan, target, f, j);
            }
        }

        AddPooled(inputName, buffer, n * f, [n, f]);
    }

    private void AddColumn(BoundColumn column, ReadOnlySpan<int> rows)
    {
        var n = rows.Length;
        var input = column.Input;
        if (column.Column.Kind == ColumnKind.Float32List)
        {
            var width = column.ListLength;
            // A list of C·H·W values is the row-major layout of one [C, H, W] row: only the shape differs.
            var listShape = TensorInputMapping.ListShape(input, n, width);
            if (input.ElementType == TensorElementKind.Double)
            {
                AddList<double>(input.Name, column.Column.As<float[]?>(), rows, width, listShape);
            }
            else
            {
                AddList<float>(input.Name, column.Column.As<float[]?>(), rows, width, listShape);
            }

            return;
        }

        var shape = new long[Math.Max(input.Shape.Length, 1)];
        shape[0] = n;
        for (var d = 1; d < shape.Length; d++)
        {
            shape[d] = 1;
        }

        switch (input.ElementType)
        {
            case TensorElementKind.Float:
                AddScalar<float>(input.Name, column.Column, rows, shape);
                break;
            case TensorElementKind.Double:
                AddScalar<double>(input.Name, column.Column, rows, shape);
                break;
            case TensorElementKind.Int64:
                AddScalar<long>(input.Name, column.Column, rows, shape);
                break;
            case TensorElementKind.Int32:
                AddScalar<int>(input.Name, column.Column, rows, shape);
                break;
            case TensorElementKind.Bool:
                {
                    var source = column.Column.As<bool>();
                    var buffer = Rent<bool>(n);
                    for (var i = 0; i < n; i++)
                    {
                        buffer[i] = source[rows[i]];
                    }

                    AddPooled(input.Name, buffer, n, shape);
                    break;
                }

            case TensorElementKind.String:
                {
                    var source = column.Column.As<string?>();
                    var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
                    Names.Add(input.Name);
                    Values.Add(value);
                    for (var i = 0; i < n; i++)
                    {
                        value.StringTensorSetElementAt((source[rows[i]] ?? string.Empty).AsSpan(), i);
                    }

                    break;
                }

            default:
                throw new NotSupportedException($"Input '{input.Name}' has unsupported element type {input.ElementType}.");
        }
    }

    private void AddScalar<T>(string inputName, BatchColumn column, ReadOnlySpan<int> rows, long[] shape)
        where T : unmanaged, INumberBase<T>
    {
        var buffer = Rent<T>(rows.Length);
        Gather(column, rows, buffer.AsSpan(0, rows.Length), 1, 0);
        AddPooled(inputName, buffer, rows.Length, shape);
    }

    private void AddList<T>(string inputName, float[]?[] lists, ReadOnlySpan<int> rows, int width, long[] shape)
        where T : unmanaged, INumberBase<T>
    {
        var n = rows.Length;
        var buffer = Rent<T>(n * width);
        for (var i = 0; i < n; i++)
        {
            var source = lists[rows[i]]!;
            var target = buffer.AsSpan(i * width, width);
            if (typeof(T) == typeof(float))
            {
                source.AsSpan(0, width).CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(target));
            }
            else
            {
                for (var k = 0; k < width; k++)
                {
                    target[k] = T.CreateTruncating(source[k]);
                }
            }
        }

        AddPooled(inputName, buffer, n * width, shape);
    }

    /// <summary>dst[i * stride + offset] = column[rows[i]], converted to T.</summary>
    private static void Gather<T>(BatchColumn column, ReadOnlySpan<int> rows, Span<T> dst, int stride, int offset)
        where T : unmanaged, INumberBase<T>
    {
        var n = rows.Length;
        switch (column.Values)
        {
            case float[] a:
                for (var i = 0; i < n; i++)
                {
                    dst[(i * stride) + offset] = T.CreateTruncating(a[rows[i]]);
                }

                break;
            case double[] a:
                for (var i = 0; i < n; i++)
                {
                    dst[(i * stride) + offset] = T.CreateTruncating(a[rows[i]]);
                }

                break;
            case int[] a:
                for (var i = 0; i < n; i++)
                {
                    dst[(i * stride) + offset] = T.CreateTruncating(a[rows[i]]);
                }

                break;
            case long[] a:
                for (var i = 0; i < n; i++)
                {
                    dst[(i * stride) + offset] = T.CreateTruncating(a[rows[i]]);
                }

                break;
            case bool[] a:
                for (var i = 0; i < n; i++)
                {
                    dst[(i * stride) + offset] = a[rows[i]] ? T.One : T.Zero;
                }

                break;
            default:
                throw new InvalidOperationException($"Column '{column.Name}' ({column.Kind}) is not numeric.");
        }
    }

    private static T[] Rent<T>(int length) => ArrayPool<T>.Shared.Rent(Math.Max(length, 1));

    private void AddPooled<T>(string inputName, T[] buffer, int length, long[] shape)
        where T : unmanaged
    {
        _release.Add(() => ArrayPool<T>.Shared.Return(buffer));
        var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, length), shape);
        Names.Add(inputName);
        Values.Add(value);
    }
}
