using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Batching;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Worker.Requests.Batching;
using BatchScoring.Worker.Requests.Intake;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Worker.Requests.Lanes;

/// <summary>A feature a request row must carry for a model version, and the column kind it is converted to.</summary>
internal sealed record RequestFeature(string Name, ColumnKind Kind, int ListLength);

/// <summary>
/// Everything request mode needs for one model version: which named features feed the model (and as what type),
/// the results table, and the batcher that gathers rows of many requests into one inference call. One loop per
/// lane runs inference; writes to PostgreSQL overlap with the next batch (up to MaxConcurrentWrites).
/// </summary>
internal sealed class RequestLane
{
    public const string KeyColumn = "row_key";

    private readonly ModelVersionEntity _version;
    private readonly InputMapping _mapping;
    private readonly ModelCache _models;
    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly RequestBatchingOptions _options;
    private readonly DynamicBatcher<PendingRequest> _batcher;
    private readonly SemaphoreSlim _writes;
    private readonly ScoredModel _scoredModel;
    private readonly ScoreOptions _scoreOptions = new();
    private readonly bool _allFloat32;
    private readonly DriftSampleRecorder _driftSamples;
    private long _backlogRows;
    private Task _loop = Task.CompletedTask;

    private RequestLane(
        ModelVersionEntity version, InputMapping mapping, IReadOnlyList<RequestFeature> features, ResultTable table,
        ModelCache models, NpgsqlDataSource dataSource, DriftSampleRecorder driftSamples, RequestBatchingOptions options, ILogger logger)
    {
        _version = version;
        _driftSamples = driftSamples;
        _mapping = mapping;
        Features = features;
        _allFloat32 = features.Count > 0 && features.All(f => f.Kind == ColumnKind.Float32);
        Table = table;
        _models = models;
        _dataSource = dataSource;
        _options = options;
        _logger = logger;
        _scoredModel = new ScoredModel(version.ModelName, version.Version);
        _writes = new SemaphoreSlim(options.MaxConcurrentWrites, options.MaxConcurrentWrites);
        _batcher = new DynamicBatcher<PendingRequest>(options.MaxBatchRows, options.MaxQueueDelay, p => p.RowCount, AdmitAtDequeue, RunBatchAsync);
    }

    public IReadOnlyList<RequestFeature> Features { get; }

    public ResultTable Table { get; }

    public ScoredModel Model => _scoredModel;

    /// <summary>Rows admitted and not yet finished (queued, being scored or being written).</summary>
    public long BacklogRows => Interlocked.Read(ref _backlogRows);

    /// <summary>Plans request scoring for a model version and creates its results table. Throws <see cref="ScoreRequestRejectedException"/> when the model cannot be fed from named features.</summary>
    public static async Task<RequestLane> CreateAsync(
        ModelVersionEntity version, ModelCache models, NpgsqlDataSource dataSource, DriftSampleRecorder driftSamples, RequestBatchingOptions options, ILogger logger,
        CancellationToken cancellationToken)
    {
        InputMapping mapping;
        List<RequestFeature> features;
        IReadOnlyList<(string Name, ColumnKind Kind)> outputs;
        using (var lease = models.Acquire(version))
        {
            var signature = lease.Model.Signature;
            features = PlanFeatures(signature);
            try
            {
                mapping = lease.Model.MapInputs(features.Select(f => (f.Name, f.Kind)).ToArray(), new InputMappingRequest { KeyColumn = KeyColumn });
            }
            catch (InputMappingException ex)
            {
                throw new ScoreRequestRejectedException($"Model '{version.ModelName}' v{version.Version} cannot be scored from named features: {ex.Message}");
            }

            // Keep only the features the mapping reads (in model order), with the kinds it binds.
            var needed = mapping.RequiredColumns.ToHashSet(StringComparer.Ordinal);
            features = features.Where(f => needed.Contains(f.Name)).ToList();
            outputs = lease.Model.DescribeOutputs();
        }

        var baseName = ResultTable.NormalizeColumnName("request_results_" + version.ModelName);
        ResultTable table;
        try
        {
            table = ResultTable.Define(ResultTable.DefaultSchema + "." + baseName, new ResultColumn(KeyColumn, ColumnKind.String), [], outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
        }
        catch (ArgumentException ex)
        {
            throw new ScoreRequestRejectedException($"Model '{version.ModelName}' v{version.Version} cannot be scored in request mode: {ex.Message}");
        }

        try
        {
            await table.EnsureCreatedAsync(dataSource, cancellationToken);
        }
        catch (ResultTableMismatchException ex)
        {
            // Another version of the model has other outputs: this version gets its own table.
            var suffix = "_v" + version.Version.ToString(CultureInfo.InvariantCulture);
            var versioned = (baseName.Length + suffix.Length > 63 ? baseName[..(63 - suffix.Length)] : baseName) + suffix;
            logger.LogWarning("Model {Model} v{Version}: {Error}; writing its request results to scoring.{Table}", version.ModelName, version.Version, ex.Message, versioned);
            table = ResultTable.Define(ResultTable.DefaultSchema + "." + versioned, new ResultColumn(KeyColumn, ColumnKind.String), [], outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
            await table.EnsureCreatedAsync(dataSource, cancellationToken);
        }

        return new RequestLane(version, mapping, features, table, models, dataSource, driftSamples, options, logger);
    }

    /// <summary>
    /// The named features of a model: its feature_names metadata (single [N, F] input), else a list feature named
    /// after that input, else one feature per input (named like the input, typed by its element type).
    /// </summary>
    private static List<RequestFeature> PlanFeatures(ModelSignature signature)
    {
        if (signature.Inputs is [{ Kind: ValueKind.Tensor, ElementType: TensorElementKind.Float or TensorElementKind.Double, Shape.Length: 2 } single])
        {
            if (signature.FeatureNames is { } names)
            {
                return names.Select(n => new RequestFeature(n, ColumnKind.Float32, 0)).ToList();
            }

            var width = single.Shape[1] > 0 ? (int)single.Shape[1] : -1;
            return [new RequestFeature(single.Name, ColumnKind.Float32List, width)];
        }

        return signature.Inputs.Select(i => new RequestFeature(i.Name, i.ElementType switch
        {
            TensorElementKind.Double => ColumnKind.Float64,
            TensorElementKind.Int64 or TensorElementKind.UInt32 => ColumnKind.Int64,
            TensorElementKind.Int32 or TensorElementKind.Int16 or TensorElementKind.Int8 or TensorElementKind.UInt16 or TensorElementKind.UInt8 => ColumnKind.Int32,
            TensorElementKind.Bool => ColumnKind.Boolean,
            TensorElementKind.String => ColumnKind.String,
            _ => ColumnKind.Float32,
        }, 0)).ToList();
    }

    /// <summary>Starts the batching loop.</summary>
    public void Start(CancellationToken stopping) =>
        _loop = Task.Run(async () =>
        {
            try
            {
                await _batcher.RunAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // shutting down
            }
        }, CancellationToken.None);

    public Task Completion => _loop;

    /// <summary>
    /// Converts a request's rows into columns of the model's feature types. Returns null and the problems when the
    /// request does not fit the model (missing features, wrong types): such a request is rejected as a whole.
    /// </summary>
    public (PendingRequest? Request, string? Problem) Prepare(ScoreRequest request)
    {
        var n = request.Rows.Count;
        var keys = new string[n];
        if (_allFloat32)
        {
            return PrepareFloats(request, keys);
        }

        // Runs once per message on the delivery thread: plain loops, no LINQ or reflection.
        var columns = new ColumnBuilder[Features.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            columns[c] = new ColumnBuilder(Features[c], n);
        }

        List<string>? problems = null;
        for (var r = 0; r < n && (problems is null || problems.Count < 5); r++)
        {
            var row = request.Rows[r];
            keys[r] = row.Key;
            foreach (var column in columns)
            {
                if (!row.Features.TryGetValue(column.Feature.Name, out var value))
                {
                    (problems ??= []).Add($"row {r} (key {row.Key}): feature '{column.Feature.Name}' is missing");
                    continue;
                }

                if (column.Set(r, value) is { } problem)
                {
                    (problems ??= []).Add($"row {r} (key {row.Key}): feature '{column.Feature.Name}' {problem}");
                }
            }
        }

        if (problems is not null)
        {
            return (null, DoesNotFit(problems));
        }

        var batchColumns = new BatchColumn[columns.Length + 1];
        batchColumns[0] = new BatchColumn(KeyColumn, ColumnKind.String, keys);
        for (var c = 0; c < columns.Length; c++)
        {
            batchColumns[c + 1] = columns[c].Build();
        }

        return (new PendingRequest(request, new ColumnBatch(batchColumns), keys), null);
    }

    /// <summary>
    /// The common case, named float features: one row-major array per request (instead of an array, a builder and a
    /// column per feature), gathered into columns once per batch. Single-row requests allocate ~2 KiB less each.
    /// </summary>
    private (PendingRequest? Request, string? Problem) PrepareFloats(ScoreRequest request, string[] keys)
    {
        var width = Features.Count;
        var floats = new float[keys.Length * width];
        bool[]? nulls = null;
        List<string>? problems = null;
        for (var r = 0; r < keys.Length && (problems is null || problems.Count < 5); r++)
        {
            var row = request.Rows[r];
            keys[r] = row.Key;
            var parsed = row.Features as FeatureValues;
            for (var f = 0; f < width; f++)
            {
                var name = Features[f].Name;
                // A parsed row is read by position first, and its numbers without boxing.
                var at = -1;
                object? value = null;
                if (parsed is null ? !row.Features.TryGetValue(name, out value) : (at = parsed.IndexOf(name, hint: f)) < 0)
                {
                    (problems ??= []).Add($"row {r} (key {row.Key}): feature '{name}' is missing");
                    continue;
                }

                if (parsed is not null)
                {
                    if (parsed.TryGetNumber(at, out var parsedNumber))
                    {
                        floats[(r * width) + f] = (float)parsedNumber;
                        continue;
                    }

                    value = parsed.ValueAt(at);
                }

                if (ColumnBuilder.IsNull(value))
                {
                    (nulls ??= new bool[floats.Length])[(r * width) + f] = true;
                }
                else if (ColumnBuilder.TryGetDouble(value!, out var number))
                {
                    floats[(r * width) + f] = (float)number;
                }
                else
                {
                    (problems ??= []).Add($"row {r} (key {row.Key}): feature '{name}' must be a number, got {ColumnBuilder.Kind(value!)}");
                }
            }
        }

        return problems is null ? (new PendingRequest(request, keys, floats, nulls), null) : (null, DoesNotFit(problems));
    }

    private string DoesNotFit(List<string> problems)
    {
        var expected = string.Join(", ", Features.Select(f => $"{f.Name} ({Describe(f)})"));
        return $"Request does not fit model '{_version.ModelName}' v{_version.Version}: {string.Join("; ", problems)}. Expected features: {expected}.";
    }

    /// <summary>The batch's input columns: row-major float requests gathered feature by feature, others concatenated.</summary>
    private ColumnBatch GatherInput(IReadOnlyList<BatchSlice<PendingRequest>> slices, int totalRows)
    {
        if (!_allFloat32)
        {
            var parts = new ColumnBatch[slices.Count];
            for (var i = 0; i < slices.Count; i++)
            {
                var (request, start, count) = slices[i];
                parts[i] = start == 0 && count == request.RowCount ? request.Rows! : request.Rows!.Slice(start, count);
            }

            return ColumnBatch.Concat(parts);
        }

        var width = Features.Count;
        var keys = new string[totalRows];
        var values = new float[width][];
        var nulls = new bool[width][];
        for (var f = 0; f < width; f++)
        {
            values[f] = new float[totalRows];
        }

        var at = 0;
        foreach (var (request, start, count) in slices)
        {
            Array.Copy(request.Keys, start, keys, at, count);
            var source = request.Floats!;
            var sourceNulls = request.FloatNulls;
            for (var r = 0; r < count; r++)
            {
                var from = (start + r) * width;
                for (var f = 0; f < width; f++)
                {
                    values[f][at + r] = source[from + f];
                    if (sourceNulls is not null && sourceNulls[from + f])
                    {
                        (nulls[f] ??= new bool[totalRows])[at + r] = true;
                    }
                }
            }

            at += count;
        }

        var columns = new BatchColumn[width + 1];
        columns[0] = new BatchColumn(KeyColumn, ColumnKind.String, keys);
        for (var f = 0; f < width; f++)
        {
            columns[f + 1] = new BatchColumn(Features[f].Name, ColumnKind.Float32, values[f], nulls[f]);
        }

        return new ColumnBatch(columns);
    }

    /// <summary>Queues the request unless the backlog is over its limit (a request is always admitted into an empty lane).</summary>
    public bool TryAdmit(PendingRequest request)
    {
        var after = Interlocked.Add(ref _backlogRows, request.RowCount);
        if (after - request.RowCount > 0 && after > _options.MaxBacklogRows)
        {
            Interlocked.Add(ref _backlogRows, -request.RowCount);
            return false;
        }

        if (_batcher.TryEnqueue(request))
        {
            return true;
        }

        Interlocked.Add(ref _backlogRows, -request.RowCount);
        return false;
    }

    public ScoreRequestCompleted Answer(ScoreRequest request, string outcome, string? error) => new()
    {
        RequestId = request.RequestId,
        CorrelationId = request.CorrelationId,
        Model = _scoredModel,
        Outcome = outcome,
        Error = error,
        CompletedAt = DateTimeOffset.UtcNow,
    };

    private bool AdmitAtDequeue(PendingRequest request)
    {
        if (request.Request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
        {
            Finish(request);
            request.Completion.TrySetResult(Answer(
                request.Request, ScoreRequestOutcome.Timeout, $"The deadline {deadline:O} passed before the request was scored; nothing was written."));
            return false;
        }

        return true;
    }

    private void Finish(PendingRequest request)
    {
        if (request.TryFinish())
        {
            Interlocked.Add(ref _backlogRows, -request.RowCount);
        }
    }

    private async ValueTask RunBatchAsync(FormedBatch<PendingRequest> batch, CancellationToken cancellationToken)
    {
        var slices = batch.Slices;
        try
        {
            var input = GatherInput(slices, batch.Rows);
            ScoreResult result;
            var watch = Stopwatch.StartNew();
            using (var lease = _models.Acquire(_version))
            {
                result = lease.Model.Score(input, _mapping, _scoreOptions, cancellationToken);
            }

            var model = _version.ModelName;
            ScoringMetrics.InferenceSeconds.WithLabels(model, "request").Observe(watch.Elapsed.TotalSeconds);
            ScoringMetrics.BatchRows.WithLabels(model, "request").Observe(batch.Rows);
            if (_driftSamples.RequestSampleDue(model, _version.Version))
            {
                _driftSamples.Record(model, _version.Version, DriftSampleRecorder.RequestSource, input, _mapping, result);
            }

            await _writes.WaitAsync(cancellationToken);
            _ = PersistAsync(slices, input, result, cancellationToken);
        }
        catch (Exception ex)
        {
            FailAll(slices, ex);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
        }
    }

    private async Task PersistAsync(IReadOnlyList<BatchSlice<PendingRequest>> slices, ColumnBatch input, ScoreResult result, CancellationToken cancellationToken)
    {
        try
        {
            // Batch row → (slice, row within the request).
            var sliceStart = new int[slices.Count + 1];
            for (var i = 0; i < slices.Count; i++)
            {
                sliceStart[i + 1] = sliceStart[i] + slices[i].Count;
            }

            var scored = result.ScoredRows;
            var requestIds = new string[scored.Length];
            var slice = 0;
            for (var i = 0; i < scored.Length; i++)
            {
                while (scored[i] >= sliceStart[slice + 1])
                {
                    slice++;
                }

                var (request, start, _) = slices[slice];
                requestIds[i] = request.Request.RequestId;
                request.SetScored(start + scored[i] - sliceStart[slice], result.Outputs, i);
            }

            var failedRows = new List<FailedRow>(result.Failures.Count);
            foreach (var failure in result.Failures)
            {
                var s = Array.BinarySearch(sliceStart, 0, slices.Count, failure.Row);
                s = s >= 0 ? s : ~s - 1;

                var (request, start, _) = slices[s];
                var row = start + failure.Row - sliceStart[s];
                request.SetFailed(row, failure);
                failedRows.Add(new FailedRow(null, request.Request.RequestId, null, row, request.Keys[row], failure.Column, failure.Reason));
            }

            if (scored.Length > 0 || failedRows.Count > 0)
            {
                var keyColumn = input[KeyColumn];
                var outputColumns = new List<BatchColumn>(result.Outputs.Columns.Count + 1)
                {
                    scored.Length == input.RowCount ? keyColumn : keyColumn.Take(scored),
                };
                outputColumns.AddRange(result.Outputs.Columns);
                var watch = Stopwatch.StartNew();
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                if (scored.Length > 0)
                {
                    await Table.CopyRequestRowsAsync(
                        connection, requestIds, _version.ModelName, _version.Version, DateTimeOffset.UtcNow, new ColumnBatch(outputColumns), cancellationToken);
                }

                await FailedRowWriter.WriteAsync(connection, failedRows, cancellationToken);
                await tx.CommitAsync(cancellationToken);
                ScoringMetrics.CopySeconds.Observe(watch.Elapsed.TotalSeconds);
            }

            ScoringMetrics.RowsScored.WithLabels(_version.ModelName, "request").Inc(scored.Length);
            ScoringMetrics.RowsFailed.WithLabels(_version.ModelName, "request").Inc(failedRows.Count);
            foreach (var (request, _, count) in slices)
            {
                if (request.RowsDone(count))
                {
                    Finish(request);
                    request.Completion.TrySetResult(request.BuildResult(_scoredModel));
                }
            }
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Model {Model} v{Version}: writing a batch of {Requests} request slices failed", _version.ModelName, _version.Version, slices.Count);
            FailAll(slices, ex);
        }
        finally
        {
            _writes.Release();
        }
    }

    private void FailAll(IReadOnlyList<BatchSlice<PendingRequest>> slices, Exception ex)
    {
        foreach (var slice in slices)
        {
            Finish(slice.Item);
            slice.Item.Completion.TrySetException(ex);
        }
    }

    private static string Describe(RequestFeature feature) => feature.Kind switch
    {
        ColumnKind.Float32 or ColumnKind.Float64 => "number",
        ColumnKind.Int32 or ColumnKind.Int64 => "integer",
        ColumnKind.Boolean => "boolean",
        ColumnKind.String => "string",
        ColumnKind.Float32List => feature.ListLength > 0 ? $"array of {feature.ListLength} numbers" : "array of numbers",
        _ => feature.Kind.ToString(),
    };

    /// <summary>Fills one typed column from JSON (or CLR) values.</summary>
    private sealed class ColumnBuilder(RequestFeature feature, int rows)
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
}
