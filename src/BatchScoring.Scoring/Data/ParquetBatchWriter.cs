using Parquet;
using Parquet.Schema;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// Writes column batches to a Parquet file, one row group per <see cref="WriteAsync"/>. The file is written under a
/// hidden temporary name and renamed on <see cref="CompleteAsync"/>, so a reader never sees a torn file;
/// disposing without completing deletes the temporary file.
/// </summary>
public sealed class ParquetBatchWriter : IAsyncDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly FileStream _stream;
    private readonly ParquetWriter _writer;
    private readonly IReadOnlyList<SourceColumn> _columns;
    private readonly Field[] _fields;
    private long _rows;
    private bool _completed;
    private bool _disposed;

    private ParquetBatchWriter(string path, string tempPath, FileStream stream, ParquetWriter writer, IReadOnlyList<SourceColumn> columns, Field[] fields)
    {
        _path = path;
        _tempPath = tempPath;
        _stream = stream;
        _writer = writer;
        _columns = columns;
        _fields = fields;
    }

    public static ParquetOptions DefaultOptions => new()
    {
        // Snappy at the fastest level: Zstd at the default level is ~30x slower to write (see shared notes).
        CompressionMethod = CompressionMethod.Snappy,
        CompressionLevel = System.IO.Compression.CompressionLevel.Fastest,
    };

    public static async Task<ParquetBatchWriter> CreateAsync(
        string path, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var tempPath = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var fields = columns.Select(ToField).ToArray();
        var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        try
        {
            var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream, DefaultOptions, cancellationToken: cancellationToken);
            if (metadata is not null)
            {
                writer.CustomMetadata = metadata.ToDictionary();
            }

            return new ParquetBatchWriter(path, tempPath, stream, writer, columns, fields);
        }
        catch
        {
            await stream.DisposeAsync();
            File.Delete(tempPath);
            throw;
        }
    }

    public long RowsWritten => _rows;

    public async Task WriteAsync(ColumnBatch batch, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (batch.RowCount == 0)
        {
            return;
        }

        using var group = _writer.CreateRowGroup();
        for (var c = 0; c < _columns.Count; c++)
        {
            var column = batch[_columns[c].Name];
            await WriteColumnAsync(group, _fields[c], _columns[c], column, cancellationToken);
        }

        _rows += batch.RowCount;
    }

    /// <summary>
    /// Closes the file and moves it to its final name (replacing an older file of that name). When closing fails
    /// (e.g. the disk is full), the temporary file is deleted before the error is thrown.
    /// </summary>
    public async Task<long> CompleteAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            await _writer.DisposeAsync();
            await _stream.FlushAsync(cancellationToken);
            _stream.Flush(flushToDisk: true);
            await _stream.DisposeAsync();
            File.Move(_tempPath, _path, overwrite: true);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }

        _completed = true;
        _disposed = true;
        return _rows;
    }

    /// <summary>Abandons an incomplete file: its temporary file is deleted even when closing it fails (disk full).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await _writer.DisposeAsync();
        }
        catch (Exception)
        {
            // The file is being abandoned; a failure to finish its footer does not matter.
        }

        try
        {
            await _stream.DisposeAsync();
        }
        catch (IOException)
        {
            // Flushing the buffer failed (disk full): the handle is closed all the same, and the file goes below.
        }

        if (!_completed)
        {
            File.Delete(_tempPath);
        }
    }

    /// <summary>
    /// Deletes temporary files that earlier writers of <paramref name="path"/> left behind (a process killed mid-write).
    /// Call it only while no other writer of that path can be running (e.g. under the chunk's lock).
    /// </summary>
    public static int DeleteLeftovers(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        var deleted = 0;
        foreach (var file in Directory.EnumerateFiles(directory, $".{Path.GetFileName(path)}.*.tmp"))
        {
            File.Delete(file);
            deleted++;
        }

        return deleted;
    }

    private static Field ToField(SourceColumn column) => column.Kind switch
    {
        ColumnKind.Float32 => new DataField<float>(column.Name, column.Nullable),
        ColumnKind.Float64 => new DataField<double>(column.Name, column.Nullable),
        ColumnKind.Int32 => new DataField<int>(column.Name, column.Nullable),
        ColumnKind.Int64 => new DataField<long>(column.Name, column.Nullable),
        ColumnKind.Boolean => new DataField<bool>(column.Name, column.Nullable),
        ColumnKind.String => new DataField<string>(column.Name, true),
        // INT64 microseconds, UTC-adjusted: DataField<DateTime> writes the deprecated INT96, which DuckDB, Spark and
        // pandas read without the UTC flag.
        ColumnKind.Timestamp => new DateTimeDataField(column.Name, DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros, isNullable: column.Nullable),
        ColumnKind.Float32List => new ListField(column.Name, new DataField<float>("element")),
        _ => throw new ArgumentOutOfRangeException(nameof(column), column.Kind, null),
    };

    private static Task WriteColumnAsync(ParquetRowGroupWriter group, Field field, SourceColumn target, BatchColumn column, CancellationToken cancellationToken)
    {
        if (column.Kind != target.Kind)
        {
            throw new ArgumentException($"Column '{column.Name}' is {column.Kind} but the file declares {target.Kind}.", nameof(column));
        }

        if (!target.Nullable && column.Nulls is not null && column.Nulls.Any(n => n))
        {
            throw new ArgumentException($"Column '{column.Name}' has nulls but the file declares it non-nullable.", nameof(column));
        }

        return target.Kind switch
        {
            ColumnKind.Float32 => WritePrimitive<float>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.Float64 => WritePrimitive<double>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.Int32 => WritePrimitive<int>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.Int64 => WritePrimitive<long>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.Boolean => WritePrimitive<bool>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.Timestamp => WritePrimitive<DateTime>(group, (DataField)field, column, target.Nullable, cancellationToken),
            ColumnKind.String => group.WriteAsync((DataField)field, WithNulls(column.As<string?>(), column.Nulls), null),
            ColumnKind.Float32List => WriteList(group, (ListField)field, column, cancellationToken),
            _ => throw new ArgumentOutOfRangeException(nameof(target), target.Kind, null),
        };
    }

    private static string?[] WithNulls(string?[] values, bool[]? nulls)
    {
        if (nulls is null)
        {
            return values;
        }

        var copy = (string?[])values.Clone();
        for (var i = 0; i < copy.Length; i++)
        {
            if (nulls[i])
            {
                copy[i] = null;
            }
        }

        return copy;
    }

    private static Task WritePrimitive<T>(ParquetRowGroupWriter group, DataField field, BatchColumn column, bool nullable, CancellationToken cancellationToken)
        where T : struct
    {
        var values = column.As<T>();
        if (!nullable)
        {
            return group.WriteAsync<T>(field, values, null, null, cancellationToken);
        }

        var withNulls = new T?[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            withNulls[i] = column.IsNull(i) ? null : values[i];
        }

        return group.WriteAsync<T>(field, withNulls, null, null, cancellationToken);
    }

    private static Task WriteList(ParquetRowGroupWriter group, ListField field, BatchColumn column, CancellationToken cancellationToken)
    {
        var lists = column.As<float[]?>();
        var flat = new List<float?>(lists.Length * 4);
        var repetition = new List<int>(lists.Length * 4);
        for (var i = 0; i < lists.Length; i++)
        {
            var list = column.IsNull(i) ? null : lists[i];
            if (list is null || list.Length == 0)
            {
                flat.Add(null);
                repetition.Add(0);
                continue;
            }

            for (var j = 0; j < list.Length; j++)
            {
                flat.Add(list[j]);
                repetition.Add(j == 0 ? 0 : 1);
            }
        }

        return group.WriteAsync<float>((DataField)field.Item, flat.ToArray(), repetition.ToArray(), null, cancellationToken);
    }
}
