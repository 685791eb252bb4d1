using System.Diagnostics;
using System.Security.Cryptography;
using BatchScoring.Scoring.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace BatchScoring.Scoring.Onnx;

/// <summary>
/// A loaded ONNX model: one ONNX Runtime session shared by concurrent <see cref="Score"/> calls
/// (InferenceSession.Run is thread-safe; everything else here is immutable or lock-protected).
/// </summary>
public sealed class ScoringModel : IDisposable
{
    public const string CpuProvider = "CPUExecutionProvider";
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>Ticks this thread spent in ONNX Runtime's Run (Score runs synchronously, so a delta over a call is that call's).</summary>
    [ThreadStatic]
    private static long t_runTicks;

    private readonly InferenceSession _session;
    private readonly string _logId;
    private readonly ILogger _logger;
    private readonly TensorInfo[] _fetchedOutputs;
    private readonly string[] _fetchedOutputNames;
    private readonly Dictionary<string, TensorInfo> _inputsByName;
    private readonly Lock _layoutLock = new();
    private volatile OutputLayout? _layout;
    private string? _probeError;
    private bool _probed;
    private volatile bool _disposed;
    private readonly int _rowsPerRun;

    private ScoringModel(CreatedSession created, string logId, string source, string sha256, ILogger logger, int cpuRowsPerRun)
    {
        _session = created.Session;
        _rowsPerRun = created.Provider == CpuProvider && cpuRowsPerRun > 0 ? cpuRowsPerRun : int.MaxValue;
        _logId = logId;
        _logger = logger;
        Source = source;
        Sha256 = sha256;
        ExecutionProvider = created.Provider;
        ExecutionProviderReason = created.Reason;
        Signature = ReadSignature(_session);
        _inputsByName = Signature.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        _fetchedOutputs = Signature.Outputs.Where(OutputLayout.IsSupported).ToArray();
        _fetchedOutputNames = _fetchedOutputs.Select(o => o.Name).ToArray();
        foreach (var skipped in Signature.Outputs.Where(o => !OutputLayout.IsSupported(o)))
        {
            _logger.LogWarning("Model output {Output} ({Type}) has a type that cannot be written as columns; it is not fetched.", skipped.Name, skipped.ToString());
        }

        if (_fetchedOutputs.Length == 0)
        {
            throw new ModelLoadException($"Model '{source}' has no output that can be written as columns ({string.Join("; ", Signature.Outputs)}).");
        }

        _layout = OutputLayout.FromSignature(_fetchedOutputs);
    }

    /// <summary>The file path the model came from, or the name given for an in-memory model.</summary>
    public string Source { get; }

    /// <summary>SHA-256 of the model bytes, lower-case hex.</summary>
    public string Sha256 { get; }

    /// <summary>"CUDAExecutionProvider" or "CPUExecutionProvider".</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why <see cref="ExecutionProvider"/> was chosen, e.g. "CUDA device 0" or why CUDA was not used.</summary>
    public string ExecutionProviderReason { get; }

    public ModelSignature Signature { get; }

    public static ScoringModel Load(string path, ScoringSessionOptions options, ILogger? logger = null, string? expectedSha256 = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"Model file '{path}' cannot be read: {ex.Message}", ex);
        }

        return Load(bytes, options, logger, expectedSha256, path);
    }

    /// <param name="source">Name used in messages and logs (e.g. the original file name).</param>
    public static ScoringModel Load(byte[] modelBytes, ScoringSessionOptions options, ILogger? logger = null, string? expectedSha256 = null, string source = "<in-memory model>")
    {
        ArgumentNullException.ThrowIfNull(modelBytes);
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(modelBytes));
        if (expectedSha256 is not null && !string.Equals(expectedSha256.Trim(), sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ModelIntegrityException(
                $"Model file '{source}' has SHA-256 {sha256} but {expectedSha256.Trim().ToLowerInvariant()} was expected; the file differs from the registered model (changed or replaced on disk). Register the model again, or restore the file.");
        }

        if (modelBytes.Length == 0)
        {
            throw new ModelLoadException($"Model file '{source}' is empty; it is not an ONNX model.");
        }

        if (ExternalDataCheck.FindExternalTensor(modelBytes, source) is { } external)
        {
            throw new ModelLoadException(
                $"Model file '{source}' keeps the data of tensor '{Printable(external)}' in an external file; only self-contained ONNX files are accepted, since external data paths could make the service read other files. Save the model with its data inside (onnx.save_model(model, path, save_as_external_data=False)).");
        }

        // Before any other ONNX Runtime call, so that its log lines reach the logger rather than stderr.
        OnnxRuntimeLog.EnsureEnvironment(logger);
        var logId = OnnxRuntimeLog.Register(logger, source);
        CreatedSession? created = null;
        try
        {
            created = OnnxSessionFactory.Create(modelBytes, options, source, logId);
            var model = new ScoringModel(created, logId, source, sha256, logger, options.CpuRowsPerRun);
            logger.Log(
                created.Expected ? LogLevel.Information : LogLevel.Warning,
                "Loaded model {Source} (sha256 {Sha256}) on {Provider} ({ProviderReason}): inputs {Inputs}; outputs {Outputs}",
                source,
                sha256,
                created.Provider,
                created.Reason,
                string.Join("; ", model.Signature.Inputs),
                string.Join("; ", model.Signature.Outputs));
            return model;
        }
        catch
        {
            created?.Session.Dispose();
            OnnxRuntimeLog.Unregister(logId);
            throw;
        }
    }

    private static string Printable(string text)
    {
        var clean = new string(text.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return clean.Length <= 100 ? clean : clean[..100] + "…";
    }

    /// <summary>Decides which columns feed which model inputs; see <see cref="InputMappingRequest"/> for the rules.</summary>
    /// <exception cref="InputMappingException">The columns cannot feed the model; the message names the column(s).</exception>
    public InputMapping MapInputs(IReadOnlyList<(string Name, ColumnKind Kind)> columns, InputMappingRequest request) =>
        InputMapper.Map(Signature, Sha256, columns, request);

    /// <summary>The flattened result columns, before any data is scored (may run a one-row probe).</summary>
    /// <exception cref="InvalidOperationException">The layout depends on data and the probe failed.</exception>
    public IReadOnlyList<(string Name, ColumnKind Kind)> DescribeOutputs()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return (_layout ?? Probe())?.Columns
            ?? throw new InvalidOperationException($"The output columns of model '{Source}' cannot be determined before scoring: a one-row probe with zero/empty inputs failed ({_probeError}).");
    }

    /// <summary>
    /// Scores a batch: validates rows (nulls, non-finite values, list lengths), runs the valid rows and,
    /// if the model fails on the batch, bisects to isolate the failing rows.
    /// </summary>
    public ScoreResult Score(ColumnBatch batch, InputMapping mapping, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(mapping);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!string.Equals(mapping.ModelSha256, Sha256, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The input mapping was built for another model (sha256 {mapping.ModelSha256}).", nameof(mapping));
        }

        options ??= new ScoreOptions();
        var runTicksBefore = t_runTicks;
        var bound = Bind(batch, mapping);
        var bad = new bool[batch.RowCount];
        var failures = new List<RowFailure>();
        foreach (var column in bound)
        {
            RowValidator.Validate(column, options.AllowNonFinite, bad, failures);
        }

        var valid = new int[batch.RowCount - failures.Count];
        for (int i = 0, k = 0; i < bad.Length; i++)
        {
            if (!bad[i])
            {
                valid[k++] = i;
            }
        }

        var segments = new List<(int Start, int Count, Array[] Columns)>();
        if (valid.Length > 0)
        {
            // Model errors are reported per row (and bisected); keep ORT from also printing each one to stderr.
            using var runOptions = new RunOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            using var registration = cancellationToken.Register(() => runOptions.Terminate = true);
            for (var start = 0; start < valid.Length; start += _rowsPerRun)
            {
                RunIsolating(mapping, bound, valid, start, Math.Min(_rowsPerRun, valid.Length - start), runOptions, segments, failures, cancellationToken);
            }
        }

        failures.Sort((a, b) => a.Row.CompareTo(b.Row));
        var result = Assemble(valid, segments, failures);
        result.RunTime = Stopwatch.GetElapsedTime(0, t_runTicks - runTicksBefore);
        return result;
    }

    /// <summary>
    /// Raw throughput path for benchmarks: runs a single-input [N,F] float model on row-major data and
    /// returns the first output's values (row-major), with no validation or column handling.
    /// </summary>
    public float[] RunRaw(float[] rowMajor, int rows)
    {
        ArgumentNullException.ThrowIfNull(rowMajor);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Signature.Inputs.Count != 1 || Signature.Inputs[0].ElementType != TensorElementKind.Float || Signature.Inputs[0].Shape.Length != 2)
        {
            throw new InvalidOperationException($"RunRaw needs a model with a single float [N, F] input; this one has {string.Join("; ", Signature.Inputs)}.");
        }

        if (rowMajor.Length % rows != 0)
        {
            throw new ArgumentException($"{rowMajor.Length} values do not split into {rows} rows.", nameof(rowMajor));
        }

        var f = rowMajor.Length / rows;
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, rowMajor.AsMemory(), [rows, f]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [Signature.Inputs[0].Name], [input], [_fetchedOutputNames[0]]);
        var output = outputs.First();
        return output.IsTensor && output.GetTensorTypeAndShape().ElementDataType == TensorElementType.Float
            ? output.GetTensorDataAsSpan<float>().ToArray()
            : [];
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _session.Dispose();
        OnnxRuntimeLog.Unregister(_logId);
    }

    private IReadOnlyList<BoundColumn> Bind(ColumnBatch batch, InputMapping mapping)
    {
        var bound = new List<BoundColumn>(mapping.Bindings.Count);
        foreach (var binding in mapping.Bindings)
        {
            var column = batch.Find(binding.Column)
                ?? throw new InputMappingException($"Column '{binding.Column}' (feeding model input '{binding.InputName}') is not in the batch; columns present: {string.Join(", ", batch.Columns.Select(c => c.Name))}");
            if (column.Kind != binding.ColumnKind)
            {
                throw new InputMappingException($"Column '{binding.Column}' is {column.Kind} in this batch, but the input mapping was built for {binding.ColumnKind}.");
            }

            var input = _inputsByName[binding.InputName];
            var listLength = 0;
            if (column.Kind == ColumnKind.Float32List)
            {
                listLength = mapping.FeatureCount > 0 ? mapping.FeatureCount : (int)InputMapper.ValuesPerRow(input);
                if (listLength <= 0)
                {
                    // Symbolic width: the first non-null list of the batch sets it.
                    var lists = column.As<float[]?>();
                    listLength = Enumerable.Range(0, lists.Length).Where(i => !column.IsNull(i) && lists[i] is not null).Select(i => lists[i]!.Length).FirstOrDefault();
                }
            }

            bound.Add(new BoundColumn(binding, column, input, listLength));
        }

        return bound;
    }

    private void RunIsolating(
        InputMapping mapping,
        IReadOnlyList<BoundColumn> bound,
        int[] rows,
        int start,
        int count,
        RunOptions runOptions,
        List<(int Start, int Count, Array[] Columns)> segments,
        List<RowFailure> failures,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            segments.Add((start, count, RunRows(mapping, bound, rows.AsSpan(start, count), runOptions)));
        }
        catch (OnnxRuntimeException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (count == 1)
            {
                failures.Add(new RowFailure(rows[start], null, $"model error: {ex.Message}"));
                return;
            }

            _logger.LogDebug("Model {Source} failed on {Count} rows ({Message}); splitting to isolate the failing rows.", Source, count, ex.Message);
            var half = count / 2;
            RunIsolating(mapping, bound, rows, start, half, runOptions, segments, failures, cancellationToken);
            RunIsolating(mapping, bound, rows, start + half, count - half, runOptions, segments, failures, cancellationToken);
        }
    }

    private Array[] RunRows(InputMapping mapping, IReadOnlyList<BoundColumn> bound, ReadOnlySpan<int> rows, RunOptions runOptions)
    {
        using var inputs = InputTensors.Build(mapping, bound, rows);
        var runStart = Stopwatch.GetTimestamp();
        using var outputs = _session.Run(runOptions, inputs.Names, inputs.Values, _fetchedOutputNames);
        t_runTicks += Stopwatch.GetTimestamp() - runStart;
        var values = outputs.ToArray();
        var layout = _layout ?? LayoutFrom(values, rows.Length);
        return layout.Extract(values, rows.Length);
    }

    private OutputLayout LayoutFrom(IReadOnlyList<OrtValue> values, int rows)
    {
        lock (_layoutLock)
        {
            return _layout ??= OutputLayout.FromValues(_fetchedOutputs, values, rows);
        }
    }

    private OutputLayout? Probe()
    {
        lock (_layoutLock)
        {
            if (_layout is not null || _probed)
            {
                return _layout;
            }

            _probed = true;
            try
            {
                using var inputs = InputTensors.Probe(Signature.Inputs);
                using var runOptions = new RunOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
                using var outputs = _session.Run(runOptions, inputs.Names, inputs.Values, _fetchedOutputNames);
                _layout = OutputLayout.FromValues(_fetchedOutputs, outputs.ToArray(), 1);
            }
            catch (Exception ex) when (ex is OnnxRuntimeException or NotSupportedException or InvalidOperationException)
            {
                _probeError = ex.Message;
                _logger.LogDebug("Output probe for model {Source} failed: {Message}", Source, ex.Message);
            }

            return _layout;
        }
    }

    private ScoreResult Assemble(int[] valid, List<(int Start, int Count, Array[] Columns)> segments, List<RowFailure> failures)
    {
        var layout = _layout ?? Probe();
        var total = segments.Sum(s => s.Count);
        var scored = new int[total];
        var position = 0;
        foreach (var (start, count, _) in segments)
        {
            Array.Copy(valid, start, scored, position, count);
            position += count;
        }

        if (layout is null)
        {
            // Nothing ran successfully and the layout is data-dependent: no columns to report.
            return new ScoreResult(new ColumnBatch([]), scored, failures);
        }

        var columns = new BatchColumn[layout.Columns.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            var (name, kind) = layout.Columns[c];
            Array values;
            if (segments.Count == 1)
            {
                values = segments[0].Columns[c];
            }
            else
            {
                values = Array.CreateInstance(BatchColumn.ArrayTypeOf(kind).GetElementType()!, total);
                position = 0;
                foreach (var segment in segments)
                {
                    Array.Copy(segment.Columns[c], 0, values, position, segment.Count);
                    position += segment.Count;
                }
            }

            columns[c] = new BatchColumn(name, kind, values);
        }

        return new ScoreResult(new ColumnBatch(columns), scored, failures);
    }

    private static ModelSignature ReadSignature(InferenceSession session)
    {
        var inputs = session.InputNames.Select(name => Describe(name, session.InputMetadata[name])).ToArray();
        var outputs = session.OutputNames.Select(name => Describe(name, session.OutputMetadata[name])).ToArray();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in session.ModelMetadata.CustomMetadataMap)
        {
            metadata[key] = value;
        }

        return new ModelSignature(inputs, outputs, metadata);
    }

    private static TensorInfo Describe(string name, NodeMetadata metadata)
    {
        switch (metadata.OnnxValueType)
        {
            case OnnxValueType.ONNX_TYPE_TENSOR:
                return new TensorInfo(name, ElementKind(metadata.ElementDataType), metadata.Dimensions.Select(d => (long)d).ToArray(), ValueKind.Tensor)
                {
                    SymbolicDimensions = metadata.SymbolicDimensions,
                };
            case OnnxValueType.ONNX_TYPE_SEQUENCE:
                {
                    var element = metadata.AsSequenceMetadata().ElementMeta;
                    if (element.OnnxValueType == OnnxValueType.ONNX_TYPE_MAP)
                    {
                        var map = element.AsMapMetadata();
                        return new TensorInfo(name, ElementKind(map.ValueMetadata.ElementDataType), [], ValueKind.Sequence)
                        {
                            ElementKind = ValueKind.Map,
                            KeyType = ElementKind(map.KeyDataType),
                        };
                    }

                    return new TensorInfo(name, element.OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR ? ElementKind(element.ElementDataType) : TensorElementKind.Unknown, [], ValueKind.Sequence)
                    {
                        ElementKind = KindOf(element.OnnxValueType),
                    };
                }

            case OnnxValueType.ONNX_TYPE_MAP:
                {
                    var map = metadata.AsMapMetadata();
                    return new TensorInfo(name, ElementKind(map.ValueMetadata.ElementDataType), [], ValueKind.Map) { KeyType = ElementKind(map.KeyDataType) };
                }

            default:
                return new TensorInfo(name, TensorElementKind.Unknown, [], KindOf(metadata.OnnxValueType));
        }
    }

    private static ValueKind KindOf(OnnxValueType type) => type switch
    {
        OnnxValueType.ONNX_TYPE_TENSOR => ValueKind.Tensor,
        OnnxValueType.ONNX_TYPE_SEQUENCE => ValueKind.Sequence,
        OnnxValueType.ONNX_TYPE_MAP => ValueKind.Map,
        OnnxValueType.ONNX_TYPE_OPTIONAL => ValueKind.Optional,
        OnnxValueType.ONNX_TYPE_SPARSETENSOR => ValueKind.SparseTensor,
        _ => ValueKind.Unknown,
    };

    private static TensorElementKind ElementKind(TensorElementType type) => type switch
    {
        TensorElementType.Float => TensorElementKind.Float,
        TensorElementType.Double => TensorElementKind.Double,
        TensorElementType.Float16 => TensorElementKind.Float16,
        TensorElementType.BFloat16 => TensorElementKind.BFloat16,
        TensorElementType.Int8 => TensorElementKind.Int8,
        TensorElementType.UInt8 => TensorElementKind.UInt8,
        TensorElementType.Int16 => TensorElementKind.Int16,
        TensorElementType.UInt16 => TensorElementKind.UInt16,
        TensorElementType.Int32 => TensorElementKind.Int32,
        TensorElementType.UInt32 => TensorElementKind.UInt32,
        TensorElementType.Int64 => TensorElementKind.Int64,
        TensorElementType.UInt64 => TensorElementKind.UInt64,
        TensorElementType.String => TensorElementKind.String,
        TensorElementType.Bool => TensorElementKind.Bool,
        _ => TensorElementKind.Unknown,
    };
}
