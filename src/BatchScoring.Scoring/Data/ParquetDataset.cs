using Parquet;
using Parquet.Schema;

namespace BatchScoring.Scoring.Data;

/// <summary>Parquet input: one slice per row group, or several row ranges when a row group is larger than <see cref="WholeRowGroupBound"/>.</summary>
public static class ParquetDataset
{
    internal static async Task<(IReadOnlyList<SourceColumn> Columns, IReadOnlyList<ChunkSpec> Chunks, long Rows)> PlanFileAsync(
        string path, int chunkRows, int firstChunkIndex, CancellationToken cancellationToken)
    {
        await using var reader = await OpenAsync(path, cancellationToken);
        var columns = Guard(path, "its schema", () => DescribeColumns(path, reader.Schema));
        var chunks = new List<ChunkSpec>();
        long rowStart = 0;
        for (var group = 0; group < reader.RowGroupCount; group++)
        {
            var groupRows = Guard(path, $"row group {group}", () => reader.RowGroups[group].RowCount);
            if (groupRows is < 0 or > MaxRowGroupRows)
            {
                throw new DatasetException(groupRows < 0
                    ? $"'{path}' is a damaged Parquet file: row group {group} declares {groupRows} rows."
                    : $"'{path}' has a row group of {groupRows:N0} rows; at most {MaxRowGroupRows:N0} rows per row group can be read (a row group is read whole): rewrite it with smaller row groups.");
            }

            // A row group is decoded whole whatever its pieces (Parquet.Net reads a column chunk at once), so one up to
            // the bound stays one chunk; only larger ones are split, for parallelism and retry granularity.
            var pieceRows = groupRows <= WholeRowGroupBound(chunkRows) ? Math.Max(1, groupRows) : chunkRows;
            for (long offset = 0; offset < groupRows; offset += pieceRows)
            {
                if (chunks.Count > Dataset.MaxChunks)
                {
                    throw new DatasetException($"'{path}' would make more than {Dataset.MaxChunks:N0} chunks; use larger chunks (ChunkRows).");
                }

                chunks.Add(new ChunkSpec(firstChunkIndex + chunks.Count, path, group, rowStart + offset, Math.Min(pieceRows, groupRows - offset)));
            }

            rowStart += groupRows;
        }

        return (columns, chunks, rowStart);
    }

    /// <summary>
    /// Largest row group planned as one chunk: <see cref="WholeRowGroupFactor"/> × the chunk size. Larger ones are cut
    /// into chunk-size pieces, which a worker decodes once (<see cref="ParquetRowGroupCache"/>).
    /// </summary>
    public static long WholeRowGroupBound(int chunkRows) => (long)chunkRows * WholeRowGroupFactor;

    public const int WholeRowGroupFactor = 4;

    /// <summary>Sizes the process's row-group cache for a worker scoring <paramref name="chunkConcurrency"/> chunks at once: one decoded row group each, plus one.</summary>
    public static void ConfigureSharedRowGroups(int chunkConcurrency) =>
        ParquetRowGroupCache.Shared.Capacity = Math.Max(1, chunkConcurrency) + 1;

    /// <summary>A row group is read whole (Parquet.Net reads a column chunk at once): beyond this, memory is the limit.</summary>
    public const int MaxRowGroupRows = 64 * 1024 * 1024;

    public static async Task<IReadOnlyList<SourceColumn>> ReadColumnsAsync(string path, CancellationToken cancellationToken)
    {
        await using var reader = await OpenAsync(path, cancellationToken);
        return Guard(path, "its schema", () => DescribeColumns(path, reader.Schema));
    }

    internal static async Task<SourceBatch> ReadChunkAsync(ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        await using var reader = await OpenAsync(chunk.Path, cancellationToken);
        try
        {
            return await ReadOpenedChunkAsync(reader, chunk, columns, cancellationToken);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            // Parquet.Net's messages may quote bytes of the file; name the file and where it broke instead.
            throw new DatasetException(
                $"'{chunk.Path}' is a damaged Parquet file: row group {chunk.RowGroup} cannot be read (chunk {chunk.Index}). Was the file changed after the job was planned?", ex);
        }
    }

    /// <summary>
    /// Reads the ranges of one chunk one after the other, each a row group (or part of one), opening each file once for
    /// its consecutive ranges: the caller holds one row group at a time, never the chunk whole.
    /// </summary>
    /// <remarks>
    /// A range that is part of a row group takes it from <paramref name="cache"/>: its other pieces are decoded once.
    /// Files are rented from <paramref name="readers"/> (the process's pool by default): a large file's footer is parsed
    /// once per worker, not once per chunk.
    /// </remarks>
    internal static async IAsyncEnumerable<SourceBatch> ReadRangesAsync(
        IEnumerable<ChunkSpec> ranges, IReadOnlyList<SourceColumn> columns, ParquetRowGroupCache? cache,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken, ParquetReaderPool? readers = null)
    {
        var pool = readers ?? ParquetReaderPool.Shared;
        ParquetReader? reader = null;
        ParquetFileVersion version = default;
        string? openPath = null;
        var readFailed = true;
        try
        {
            foreach (var range in ranges)
            {
                if (reader is null || openPath != range.Path)
                {
                    if (reader is not null)
                    {
                        pool.Return(openPath!, reader, version);
                        reader = null;
                    }

                    (reader, version) = await pool.RentAsync(range.Path, OpenVersionAsync, cancellationToken);
                    openPath = range.Path;
                }

                SourceBatch batch;
                try
                {
                    batch = await ReadOpenedChunkAsync(reader, range, columns, cancellationToken, cache is null ? null : (cache, version));
                }
                catch (Exception ex) when (IsDamage(ex))
                {
                    throw new DatasetException(
                        $"'{range.Path}' is a damaged Parquet file: row group {range.RowGroup} cannot be read (chunk {range.Index}). Was the file changed after the job was planned?", ex);
                }

                yield return batch;
            }

            readFailed = false;
        }
        finally
        {
            if (reader is not null)
            {
                // A reader that failed (or whose chunk stopped part way) may be mid-read: never handed on.
                if (readFailed)
                {
                    await reader.DisposeAsync();
                }
                else
                {
                    pool.Return(openPath!, reader, version);
                }
            }
        }
    }

    private static async Task<SourceBatch> ReadOpenedChunkAsync(
        ParquetReader reader, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken,
        (ParquetRowGroupCache Cache, ParquetFileVersion Version)? shared = null)
    {
        var group = chunk.RowGroup ?? throw new DatasetException($"Chunk {chunk.Index} of '{chunk.Path}' names no row group.");
        if (group >= reader.RowGroupCount)
        {
            throw new DatasetException($"'{chunk.Path}' has {reader.RowGroupCount} row groups; chunk {chunk.Index} needs row group {group}. Was the file replaced after the job was planned?");
        }

        using var groupReader = reader.OpenRowGroupReader(group);
        if (groupReader.RowCount is < 0 or > MaxRowGroupRows)
        {
            throw new DatasetException($"'{chunk.Path}' row group {group} declares {groupReader.RowCount:N0} rows (at most {MaxRowGroupRows:N0} can be read). Was the file replaced after the job was planned?");
        }

        var groupFirstRow = 0L;
        for (var g = 0; g < group; g++)
        {
            groupFirstRow += reader.RowGroups[g].RowCount;
        }

        var offsetInGroup = (int)(chunk.RowStart - groupFirstRow);
        var count = (int)chunk.RowCount;
        if (offsetInGroup < 0 || offsetInGroup + count > groupReader.RowCount)
        {
            throw new DatasetException($"Chunk {chunk.Index} (rows {chunk.RowStart}..{chunk.RowStart + chunk.RowCount}) is outside row group {group} of '{chunk.Path}'. Was the file replaced after the job was planned?");
        }

        var whole = offsetInGroup == 0 && count == groupReader.RowCount;
        if (whole || shared is not { } cached)
        {
            var decoded = await DecodeRowGroupAsync(reader, groupReader, chunk.Path, columns, cancellationToken);
            return new SourceBatch(whole ? decoded : decoded.Slice(offsetInGroup, count), chunk.RowStart, []);
        }

        var key = new RowGroupKey(chunk.Path, cached.Version.Length, cached.Version.LastWriteUtc, group, RowGroupKey.ColumnsKey(columns));
        var rowGroup = await cached.Cache.GetAsync(
            key, offsetInGroup, count, groupReader.RowCount, ct => DecodeRowGroupAsync(reader, groupReader, chunk.Path, columns, ct), cancellationToken);
        return new SourceBatch(rowGroup.Slice(offsetInGroup, count), chunk.RowStart, []);
    }

    /// <summary>The named columns of one whole row group (Parquet.Net reads a column chunk at once).</summary>
    private static async Task<ColumnBatch> DecodeRowGroupAsync(
        ParquetReader reader, ParquetRowGroupReader groupReader, string path, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        var fields = reader.Schema.Fields;
        var result = new List<BatchColumn>(columns.Count);
        foreach (var column in columns)
        {
            var field = fields.FirstOrDefault(f => f.Name == column.Name)
                ?? throw new DatasetException($"'{path}' has no column '{column.Name}'.");
            result.Add(await ReadColumnAsync(groupReader, field, column, path, cancellationToken));
        }

        return new ColumnBatch(result);
    }

    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    /// <summary>
    /// Opens a Parquet file after checking what it is without quoting it: Parquet.Net's own errors include the file's
    /// first and last bytes, which would put a line of any file a caller points at into the answer.
    /// </summary>
    private static async Task<ParquetReader> OpenAsync(string path, CancellationToken cancellationToken) =>
        (await OpenVersionAsync(path, cancellationToken)).Reader;

    /// <summary>Opens a Parquet file (see <see cref="OpenAsync"/>) and says which version of it was opened.</summary>
    private static async Task<(ParquetReader Reader, ParquetFileVersion Version)> OpenVersionAsync(string path, CancellationToken cancellationToken)
    {
        var stream = InputFile.Open(path, useAsync: true);
        try
        {
            var length = stream.Length;
            // Taken from the open handle: a file replaced after this point is not the one read here.
            var version = new ParquetFileVersion(length, File.GetLastWriteTimeUtc(stream.SafeFileHandle));
            if (length == 0)
            {
                throw new DatasetException($"Input file '{path}' is empty (0 bytes); it is not a Parquet file.");
            }

            // Header magic, footer length, footer magic: anything shorter cannot be Parquet.
            if (length < 12 || !await HasMagicAsync(stream, 0, cancellationToken) || !await HasMagicAsync(stream, length - 4, cancellationToken))
            {
                throw new DatasetException(
                    $"Input file '{path}' is not a Parquet file ({length:N0} bytes without the Parquet markers at its start and end); name CSV files *.csv.");
            }

            stream.Position = 0;
            return (await ParquetReader.CreateAsync(stream, leaveStreamOpen: false, cancellationToken: cancellationToken), version);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            await stream.DisposeAsync();
            throw new DatasetException($"Input file '{path}' is a damaged or truncated Parquet file: its footer (the file's metadata) cannot be read.", ex);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }


    private static async Task<bool> HasMagicAsync(FileStream stream, long offset, CancellationToken cancellationToken)
    {
        var buffer = new byte[4];
        stream.Position = offset;
        await stream.ReadExactlyAsync(buffer, cancellationToken);
        return buffer.AsSpan().SequenceEqual(Magic);
    }

    /// <summary>What a damaged file can make Parquet.Net throw (not cancellation, and not our own messages).</summary>
    private static bool IsDamage(Exception ex) => ex is not (OperationCanceledException or DatasetException);

    private static T Guard<T>(string path, string what, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            throw new DatasetException($"Input file '{path}' is a damaged Parquet file: {what} cannot be read.", ex);
        }
    }

    private static List<SourceColumn> DescribeColumns(string path, ParquetSchema schema)
    {
        var columns = new List<SourceColumn>();
        foreach (var field in schema.Fields)
        {
            switch (field)
            {
                case DataField data when KindOf(data.ClrType) is { } kind:
                    columns.Add(new SourceColumn(data.Name, kind, data.IsNullable));
                    break;
                case ListField list when ListLeaf(list) is { } item && (item.ClrType == typeof(float) || item.ClrType == typeof(double)):
                    // Nested lists (an image as list<list<list<float>>>) are read flattened, row-major.
                    columns.Add(new SourceColumn(list.Name, ColumnKind.Float32List, true));
                    break;
                default:
                    // Unsupported shapes (structs, maps, decimals...) stay unreadable but do not block the other columns.
                    break;
            }
        }

        return columns.Count > 0 ? columns : throw new DatasetException($"'{path}' has no column of a supported type.");
    }

    /// <summary>The numbers of a list, or of a list of lists at any depth; null for lists of anything else.</summary>
    private static DataField? ListLeaf(ListField list) => list.Item switch
    {
        DataField data => data,
        ListField inner => ListLeaf(inner),
        _ => null,
    };

    private static ColumnKind? KindOf(Type clrType) => clrType switch
    {
        _ when clrType == typeof(float) => ColumnKind.Float32,
        _ when clrType == typeof(double) => ColumnKind.Float64,
        _ when clrType == typeof(int) || clrType == typeof(short) || clrType == typeof(byte) || clrType == typeof(sbyte) || clrType == typeof(ushort) => ColumnKind.Int32,
        _ when clrType == typeof(long) || clrType == typeof(uint) => ColumnKind.Int64,
        _ when clrType == typeof(bool) => ColumnKind.Boolean,
        _ when clrType == typeof(string) || clrType == typeof(ReadOnlyMemory<char>) => ColumnKind.String,
        _ when clrType == typeof(DateTime) => ColumnKind.Timestamp,
        _ => null,
    };

    private static async Task<BatchColumn> ReadColumnAsync(
        ParquetRowGroupReader groupReader, Field field, SourceColumn column, string path, CancellationToken cancellationToken)
    {
        var rows = checked((int)groupReader.RowCount);
        if (field is ListField list && ListLeaf(list) is { } item)
        {
            return await ReadListAsync(groupReader, item, column.Name, rows, cancellationToken);
        }

        var data = (DataField)field;
        var clr = data.ClrType;
        return column.Kind switch
        {
            ColumnKind.Float32 => await ReadPrimitiveAsync<float, float>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Float64 => await ReadPrimitiveAsync<double, double>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int32 when clr == typeof(short) => await ReadPrimitiveAsync<short, int>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int32 when clr == typeof(ushort) => await ReadPrimitiveAsync<ushort, int>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int32 when clr == typeof(byte) => await ReadPrimitiveAsync<byte, int>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int32 when clr == typeof(sbyte) => await ReadPrimitiveAsync<sbyte, int>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int32 => await ReadPrimitiveAsync<int, int>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int64 when clr == typeof(uint) => await ReadPrimitiveAsync<uint, long>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Int64 => await ReadPrimitiveAsync<long, long>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Boolean => await ReadPrimitiveAsync<bool, bool>(groupReader, data, column, rows, v => v, cancellationToken),
            ColumnKind.Timestamp => await ReadPrimitiveAsync<DateTime, DateTime>(groupReader, data, column, rows, ToUtc, cancellationToken),
            ColumnKind.String => await ReadStringAsync(groupReader, data, column, rows, cancellationToken),
            _ => throw new DatasetException($"Column '{column.Name}' of '{path}' has an unsupported type {column.Kind}."),
        };
    }

    private static DateTime ToUtc(DateTime value) => value.Kind == DateTimeKind.Utc ? value : DateTime.SpecifyKind(value, DateTimeKind.Utc);

    private static async Task<BatchColumn> ReadPrimitiveAsync<TRaw, TOut>(
        ParquetRowGroupReader reader, DataField field, SourceColumn column, int rows, Func<TRaw, TOut> convert, CancellationToken cancellationToken)
        where TRaw : struct
    {
        var values = new TOut[rows];
        bool[]? nulls = null;
        if (!field.IsNullable && typeof(TRaw) == typeof(TOut))
        {
            await reader.ReadAsync<TRaw>(field, (Memory<TRaw>)(object)values.AsMemory(), null, cancellationToken);
        }
        else if (!field.IsNullable)
        {
            var raw = new TRaw[rows];
            await reader.ReadAsync<TRaw>(field, raw.AsMemory(), null, cancellationToken);
            for (var i = 0; i < rows; i++)
            {
                values[i] = convert(raw[i]);
            }
        }
        else if (typeof(TRaw) == typeof(TOut) && typeof(TOut) != typeof(DateTime) && ParquetNullableReads.Supports(field))
        {
            nulls = await ParquetNullableReads.ReadAsync(reader, field, (TRaw[])(object)values, cancellationToken);
        }
        else
        {
            var raw = new TRaw?[rows];
            await reader.ReadAsync<TRaw>(field, raw.AsMemory(), null, cancellationToken);
            for (var i = 0; i < rows; i++)
            {
                if (raw[i] is { } value)
                {
                    values[i] = convert(value);
                }
                else
                {
                    nulls ??= new bool[rows];
                    nulls[i] = true;
                }
            }
        }

        if (typeof(TOut) == typeof(DateTime) && !field.IsNullable)
        {
            var stamps = (DateTime[])(object)values;
            for (var i = 0; i < rows; i++)
            {
                stamps[i] = ToUtc(stamps[i]);
            }
        }

        return new BatchColumn(column.Name, column.Kind, values, nulls);
    }

    private static async Task<BatchColumn> ReadStringAsync(
        ParquetRowGroupReader reader, DataField field, SourceColumn column, int rows, CancellationToken cancellationToken)
    {
        var values = new string?[rows];
        await reader.ReadAsync(field, values.AsMemory(), null, cancellationToken);
        bool[]? nulls = null;
        for (var i = 0; i < rows; i++)
        {
            if (values[i] is null)
            {
                nulls ??= new bool[rows];
                nulls[i] = true;
            }
        }

        return new BatchColumn(column.Name, ColumnKind.String, values, nulls);
    }

    private static async Task<BatchColumn> ReadListAsync(
        ParquetRowGroupReader reader, DataField item, string name, int rows, CancellationToken cancellationToken)
    {
        var valueCount = checked((int)(reader.GetMetadata(item)?.MetaData?.NumValues ?? throw new DatasetException($"List column '{name}' has no column chunk metadata.")));
        var repetition = new int[valueCount];
        var definition = new int[valueCount];
        var lists = new float[rows][];
        bool[]? nulls = null;
        var flat = new List<float>();

        // ReadAsync with repetition levels fails on list columns in Parquet.Net 6.1.0; the raw read gives packed
        // non-null values plus both level arrays, which is all a list of floats needs.
        float[] packed;
        if (item.ClrType == typeof(double))
        {
            var raw = new double[valueCount];
            await reader.ReadRawAsync<double>(item, raw.AsMemory(), definition.AsMemory(), repetition.AsMemory(), cancellationToken);
            packed = raw.Select(v => (float)v).ToArray();
        }
        else
        {
            packed = new float[valueCount];
            await reader.ReadRawAsync<float>(item, packed.AsMemory(), definition.AsMemory(), repetition.AsMemory(), cancellationToken);
        }

        Assemble();
        return new BatchColumn(name, ColumnKind.Float32List, lists, nulls);

        void Assemble()
        {
            var row = -1;
            var rowHasNull = false;
            var present = definition.Length == 0 ? 0 : definition.Max();
            var next = 0;
            for (var i = 0; i < definition.Length; i++)
            {
                if (repetition[i] == 0)
                {
                    Flush();
                    row++;
                }

                if (definition[i] == present)
                {
                    flat.Add(packed[next++]);
                }
                else
                {
                    rowHasNull = true;
                }
            }

            Flush();
            for (var r = row + 1; r < rows; r++)
            {
                lists[r] = [];
            }

            void Flush()
            {
                if (row < 0)
                {
                    return;
                }

                if (rowHasNull && flat.Count == 0)
                {
                    nulls ??= new bool[rows];
                    nulls[row] = true;
                    lists[row] = [];
                }
                else
                {
                    // A null element inside a list cannot be scored; NaN makes the row fail the finite-value check.
                    lists[row] = rowHasNull ? [.. flat, float.NaN] : [.. flat];
                }

                flat.Clear();
                rowHasNull = false;
            }
        }
    }
}
