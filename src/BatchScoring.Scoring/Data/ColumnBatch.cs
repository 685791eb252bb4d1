namespace BatchScoring.Scoring.Data;

/// <summary>Physical type of a batch column. Lists hold one float vector per row.</summary>
public enum ColumnKind
{
    Float32,
    Float64,
    Int32,
    Int64,
    Boolean,
    String,
    Timestamp,
    Float32List,
}

/// <summary>
/// One column of a <see cref="ColumnBatch"/>: a typed array (float[], double[], int[], long[], bool[],
/// string?[], DateTime[] in UTC, float[]?[] for lists) and an optional null mask (true = null).
/// </summary>
public sealed class BatchColumn
{
    public BatchColumn(string name, ColumnKind kind, Array values, bool[]? nulls = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(values);
        if (values.GetType() != ArrayTypeOf(kind))
        {
            throw new ArgumentException($"Column '{name}' of kind {kind} needs {ArrayTypeOf(kind).Name}, got {values.GetType().Name}.", nameof(values));
        }

        if (nulls is not null && nulls.Length != values.Length)
        {
            throw new ArgumentException($"Column '{name}' has {values.Length} values but {nulls.Length} null flags.", nameof(nulls));
        }

        Name = name;
        Kind = kind;
        Values = values;
        Nulls = nulls;
    }

    public string Name { get; }

    public ColumnKind Kind { get; }

    public Array Values { get; }

    /// <summary>True marks a null row; null when the column has no nulls.</summary>
    public bool[]? Nulls { get; }

    public int Length => Values.Length;

    public bool IsNull(int row) => Nulls is not null && Nulls[row];

    public T[] As<T>() => Values as T[]
        ?? throw new InvalidOperationException($"Column '{Name}' is {Kind}, not {typeof(T).Name}.");

    public object? GetValue(int row) => IsNull(row) ? null : Values.GetValue(row);

    public bool IsNumeric => Kind is ColumnKind.Float32 or ColumnKind.Float64 or ColumnKind.Int32 or ColumnKind.Int64 or ColumnKind.Boolean;

    public static Type ArrayTypeOf(ColumnKind kind) => kind switch
    {
        ColumnKind.Float32 => typeof(float[]),
        ColumnKind.Float64 => typeof(double[]),
        ColumnKind.Int32 => typeof(int[]),
        ColumnKind.Int64 => typeof(long[]),
        ColumnKind.Boolean => typeof(bool[]),
        ColumnKind.String => typeof(string[]),
        ColumnKind.Timestamp => typeof(DateTime[]),
        ColumnKind.Float32List => typeof(float[][]),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Copies rows [start, start+count) into a new column.</summary>
    public BatchColumn Slice(int start, int count)
    {
        // Typed copies into uninitialised arrays: a feature column of every batch of a split row group goes through here.
        var values = Values switch
        {
            float[] v => CopyRange(v, start, count),
            double[] v => CopyRange(v, start, count),
            int[] v => CopyRange(v, start, count),
            long[] v => CopyRange(v, start, count),
            bool[] v => CopyRange(v, start, count),
            _ => CopyRange(Values, start, count),
        };
        bool[]? nulls = null;
        if (Nulls is not null)
        {
            nulls = new bool[count];
            Array.Copy(Nulls, start, nulls, 0, count);
        }

        return new BatchColumn(Name, Kind, values, nulls);
    }

    /// <summary>Copies the given rows, in order, into a new column.</summary>
    public BatchColumn Take(IReadOnlyList<int> rows)
    {
        Array values = Values switch
        {
            float[] v => Gather(v, rows),
            double[] v => Gather(v, rows),
            int[] v => Gather(v, rows),
            long[] v => Gather(v, rows),
            bool[] v => Gather(v, rows),
            string[] v => Gather(v, rows),
            DateTime[] v => Gather(v, rows),
            float[][] v => Gather(v, rows),
            _ => throw new InvalidOperationException($"Column '{Name}' has an unsupported array type {Values.GetType().Name}."),
        };
        return new BatchColumn(Name, Kind, values, Nulls is null ? null : Gather(Nulls, rows));
    }

    private static Array CopyRange(Array source, int start, int count)
    {
        var result = Array.CreateInstance(source.GetType().GetElementType()!, count);
        Array.Copy(source, start, result, 0, count);
        return result;
    }

    private static T[] CopyRange<T>(T[] source, int start, int count)
        where T : unmanaged
    {
        var result = GC.AllocateUninitializedArray<T>(count);
        source.AsSpan(start, count).CopyTo(result);
        return result;
    }

    private static T[] Gather<T>(T[] source, IReadOnlyList<int> rows)
    {
        var result = new T[rows.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = source[rows[i]];
        }

        return result;
    }
}

/// <summary>Column-wise rows: every column has <see cref="RowCount"/> values.</summary>
public sealed class ColumnBatch
{
    private readonly Dictionary<string, BatchColumn> _byName;

    public ColumnBatch(IReadOnlyList<BatchColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        Columns = columns;
        RowCount = columns.Count == 0 ? 0 : columns[0].Length;
        _byName = new Dictionary<string, BatchColumn>(StringComparer.Ordinal);
        foreach (var column in columns)
        {
            if (column.Length != RowCount)
            {
                throw new ArgumentException($"Column '{column.Name}' has {column.Length} rows, expected {RowCount}.", nameof(columns));
            }

            if (!_byName.TryAdd(column.Name, column))
            {
                throw new ArgumentException($"Column '{column.Name}' appears twice.", nameof(columns));
            }
        }
    }

    public int RowCount { get; }

    public IReadOnlyList<BatchColumn> Columns { get; }

    public BatchColumn? Find(string name) => _byName.GetValueOrDefault(name);

    public BatchColumn this[string name] => Find(name)
        ?? throw new KeyNotFoundException($"Column '{name}' is not in the batch (columns: {string.Join(", ", Columns.Select(c => c.Name))}).");

    public ColumnBatch Slice(int start, int count) => new(Columns.Select(c => c.Slice(start, count)).ToArray());

    public ColumnBatch Take(IReadOnlyList<int> rows) => new(Columns.Select(c => c.Take(rows)).ToArray());

    /// <summary>Stacks batches with the same columns (by name and kind) into one.</summary>
    public static ColumnBatch Concat(IReadOnlyList<ColumnBatch> batches)
    {
        if (batches.Count == 1)
        {
            return batches[0];
        }

        var first = batches[0];
        var total = batches.Sum(b => b.RowCount);
        var columns = new BatchColumn[first.Columns.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            var template = first.Columns[c];
            var values = Array.CreateInstance(template.Values.GetType().GetElementType()!, total);
            bool[]? nulls = batches.Any(b => b[template.Name].Nulls is not null) ? new bool[total] : null;
            var offset = 0;
            foreach (var batch in batches)
            {
                var part = batch[template.Name];
                if (part.Kind != template.Kind)
                {
                    throw new ArgumentException($"Column '{template.Name}' is {part.Kind} in one batch and {template.Kind} in another.", nameof(batches));
                }

                Array.Copy(part.Values, 0, values, offset, part.Length);
                if (nulls is not null && part.Nulls is not null)
                {
                    Array.Copy(part.Nulls, 0, nulls, offset, part.Length);
                }

                offset += part.Length;
            }

            columns[c] = new BatchColumn(template.Name, template.Kind, values, nulls);
        }

        return new ColumnBatch(columns);
    }
}
