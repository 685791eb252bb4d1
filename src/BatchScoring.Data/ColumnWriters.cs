using BatchScoring.Scoring.Data;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

/// <summary>
/// Writes one batch column into a binary COPY, row by row, through the typed (non-boxing)
/// <see cref="NpgsqlBinaryImporter.WriteAsync{T}(T, NpgsqlDbType, CancellationToken)"/> overloads.
/// The returned tasks complete synchronously until the importer's buffer has to be flushed, so no
/// async state machine is needed per value.
/// </summary>
internal abstract class ColumnWriter
{
    public abstract Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct);

    /// <summary>
    /// A writer for <paramref name="source"/> into a table column of kind <paramref name="target"/>.
    /// Lossless widenings (Int32→Int64, Float32→Float64, Int32→Float64) are allowed.
    /// </summary>
    public static ColumnWriter Create(BatchColumn source, ColumnKind target, string table)
    {
        var nulls = source.Nulls;
        return (source.Kind, target) switch
        {
            (ColumnKind.Float32, ColumnKind.Float32) => new Typed<float>(source.As<float>(), nulls, NpgsqlDbType.Real),
            (ColumnKind.Float64, ColumnKind.Float64) => new Typed<double>(source.As<double>(), nulls, NpgsqlDbType.Double),
            (ColumnKind.Int32, ColumnKind.Int32) => new Typed<int>(source.As<int>(), nulls, NpgsqlDbType.Integer),
            (ColumnKind.Int64, ColumnKind.Int64) => new Typed<long>(source.As<long>(), nulls, NpgsqlDbType.Bigint),
            (ColumnKind.Boolean, ColumnKind.Boolean) => new Typed<bool>(source.As<bool>(), nulls, NpgsqlDbType.Boolean),
            (ColumnKind.String, ColumnKind.String) => new Reference<string>(source.As<string>(), nulls, NpgsqlDbType.Text),
            (ColumnKind.Float32List, ColumnKind.Float32List) => new Reference<float[]>(source.As<float[]>(), nulls, NpgsqlDbType.Array | NpgsqlDbType.Real),
            (ColumnKind.Timestamp, ColumnKind.Timestamp) => new Timestamps(source.As<DateTime>(), nulls),
            (ColumnKind.Int32, ColumnKind.Int64) => new Int32AsInt64(source.As<int>(), nulls),
            (ColumnKind.Float32, ColumnKind.Float64) => new Float32AsFloat64(source.As<float>(), nulls),
            (ColumnKind.Int32, ColumnKind.Float64) => new Int32AsFloat64(source.As<int>(), nulls),
            _ => throw new ArgumentException(
                $"Column '{source.Name}' of the batch is {source.Kind} but result table {table} stores it as {target} ({ResultColumn.PostgresType(target)}).",
                nameof(source)),
        };
    }

    /// <summary>Normalises a timestamp to UTC (Unspecified is taken as UTC).</summary>
    public static DateTime ToUtc(DateTime value) => value.Kind switch
    {
        DateTimeKind.Utc => value,
        DateTimeKind.Local => value.ToUniversalTime(),
        _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
    };

    private sealed class Typed<T>(T[] values, bool[]? nulls, NpgsqlDbType type) : ColumnWriter
        where T : struct
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct) =>
            nulls is not null && nulls[row]
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync(values[row], type, ct);
    }

    private sealed class Reference<T>(T?[] values, bool[]? nulls, NpgsqlDbType type) : ColumnWriter
        where T : class
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct)
        {
            var value = values[row];
            return value is null || (nulls is not null && nulls[row])
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync(value, type, ct);
        }
    }

    private sealed class Timestamps(DateTime[] values, bool[]? nulls) : ColumnWriter
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct) =>
            nulls is not null && nulls[row]
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync(ToUtc(values[row]), NpgsqlDbType.TimestampTz, ct);
    }

    private sealed class Int32AsInt64(int[] values, bool[]? nulls) : ColumnWriter
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct) =>
            nulls is not null && nulls[row]
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync((long)values[row], NpgsqlDbType.Bigint, ct);
    }

    private sealed class Float32AsFloat64(float[] values, bool[]? nulls) : ColumnWriter
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct) =>
            nulls is not null && nulls[row]
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync((double)values[row], NpgsqlDbType.Double, ct);
    }

    private sealed class Int32AsFloat64(int[] values, bool[]? nulls) : ColumnWriter
    {
        public override Task WriteAsync(NpgsqlBinaryImporter importer, int row, CancellationToken ct) =>
            nulls is not null && nulls[row]
                ? importer.WriteNullAsync(ct)
                : importer.WriteAsync((double)values[row], NpgsqlDbType.Double, ct);
    }
}
