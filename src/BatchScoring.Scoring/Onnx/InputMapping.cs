using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Onnx;

/// <summary>Which data columns feed the model, and which columns are not features.</summary>
public sealed class InputMappingRequest
{
    /// <summary>Row key column; never picked as a feature automatically.</summary>
    public string? KeyColumn { get; init; }

    /// <summary>Columns copied to the output unchanged; never picked as features automatically.</summary>
    public IReadOnlyList<string> Passthrough { get; init; } = [];

    /// <summary>Explicit feature columns, in model order (single [N,F] input models only).</summary>
    public IReadOnlyList<string>? Features { get; init; }
}

public enum InputMappingMode
{
    /// <summary>F numeric columns are packed row-major into the single [N,F] input.</summary>
    FeatureColumns,

    /// <summary>
    /// One list column holds the values of each row of the single input: F values for [N,F], or C·H·W values
    /// (row-major) for a tensor input of higher rank such as [N,C,H,W], reshaped to the input's shape.
    /// </summary>
    ListColumn,

    /// <summary>Each model input is fed from the column with its name.</summary>
    PerInput,
}

/// <summary>One column feeding one model input (in <see cref="InputMappingMode.FeatureColumns"/> mode, one feature slot).</summary>
public sealed record InputBinding(string InputName, string Column, ColumnKind ColumnKind);

/// <summary>How a model's inputs are built from a batch's columns. Create it with <see cref="ScoringModel.MapInputs"/>.</summary>
public sealed class InputMapping
{
    internal InputMapping(string modelSha256, InputMappingMode mode, IReadOnlyList<InputBinding> bindings, int featureCount)
    {
        ModelSha256 = modelSha256;
        Mode = mode;
        Bindings = bindings;
        FeatureCount = featureCount;
        RequiredColumns = bindings.Select(b => b.Column).Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The model this mapping was built for.</summary>
    public string ModelSha256 { get; }

    public InputMappingMode Mode { get; }

    /// <summary>Per input (or per feature slot, in feature-column order) the column that feeds it.</summary>
    public IReadOnlyList<InputBinding> Bindings { get; }

    /// <summary>The columns the mapping reads (key and passthrough columns are not included).</summary>
    public IReadOnlyList<string> RequiredColumns { get; }

    /// <summary>F for the single [N,F] input modes (-1 when the model leaves it symbolic and a list column supplies it); 0 in per-input mode.</summary>
    public int FeatureCount { get; }

    public override string ToString() => Mode switch
    {
        InputMappingMode.FeatureColumns => $"{Bindings.Count} feature columns -> '{Bindings[0].InputName}': {string.Join(", ", RequiredColumns)}",
        InputMappingMode.ListColumn => $"list column '{Bindings[0].Column}' -> '{Bindings[0].InputName}'",
        _ => string.Join(", ", Bindings.Select(b => $"'{b.Column}' -> '{b.InputName}'")),
    };
}

/// <summary>The column selection rules behind <see cref="ScoringModel.MapInputs"/>.</summary>
internal static class InputMapper
{
    public static InputMapping Map(ModelSignature signature, string sha256, IReadOnlyList<(string Name, ColumnKind Kind)> columns, InputMappingRequest request)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(request);
        var byName = new Dictionary<string, ColumnKind>(StringComparer.Ordinal);
        foreach (var (name, kind) in columns)
        {
            byName.TryAdd(name, kind);
        }

        foreach (var input in signature.Inputs)
        {
            if (input.Kind != ValueKind.Tensor)
            {
                throw new InputMappingException($"Model input '{input.Name}' is a {input.Kind.ToString().ToLowerInvariant()}; only tensor inputs can be fed from columns.");
            }
        }

        if (signature.Inputs.Count == 0)
        {
            throw new InputMappingException("The model has no inputs.");
        }

        var single = signature.Inputs.Count == 1 ? signature.Inputs[0] : null;
        var isFeatureInput = single is not null
            && single.ElementType is TensorElementKind.Float or TensorElementKind.Double
            && single.Shape.Length == 2;

        if (isFeatureInput)
        {
            return MapFeatureInput(signature, sha256, single!, columns, byName, request);
        }

        if (single is not null && TensorInputMapping.IsTensorInput(single))
        {
            return TensorInputMapping.Map(sha256, single, columns, byName, request);
        }

        if (request.Features is not null)
        {
            throw new InputMappingException($"Explicit feature columns were given, but the model does not have a single [N, F] float input ({Describe(signature.Inputs)}); its inputs are matched to columns by name.");
        }

        return MapPerInput(signature, sha256, columns, byName);
    }

    private static InputMapping MapFeatureInput(
        ModelSignature signature,
        string sha256,
        TensorInfo input,
        IReadOnlyList<(string Name, ColumnKind Kind)> columns,
        Dictionary<string, ColumnKind> byName,
        InputMappingRequest request)
    {
        var f = input.Shape[1] < 0 ? -1 : (int)input.Shape[1];

        if (request.Features is { } features)
        {
            if (features.Count == 0)
            {
                throw new InputMappingException("The explicit feature column list is empty.");
            }

            if (features.Count == 1 && byName.TryGetValue(features[0], out var onlyKind) && onlyKind == ColumnKind.Float32List)
            {
                return ListMapping(sha256, input, features[0], f);
            }

            return FeatureMapping(sha256, input, features, byName, f, "were given");
        }

        if (byName.TryGetValue(input.Name, out var sameNameKind))
        {
            if (sameNameKind == ColumnKind.Float32List)
            {
                return ListMapping(sha256, input, input.Name, f);
            }

            if (f == 1)
            {
                return FeatureMapping(sha256, input, [input.Name], byName, f, SelectedFromData);
            }
        }

        if (signature.FeatureNames is { } metadataNames)
        {
            return FeatureMapping(sha256, input, metadataNames, byName, f, "are listed in the model's feature_names metadata");
        }

        var excluded = new HashSet<string>(request.Passthrough, StringComparer.Ordinal);
        if (request.KeyColumn is not null)
        {
            excluded.Add(request.KeyColumn);
        }

        var numeric = columns.Where(c => !excluded.Contains(c.Name) && IsNumeric(c.Kind)).Select(c => c.Name).ToArray();
        var lists = columns.Where(c => !excluded.Contains(c.Name) && c.Kind == ColumnKind.Float32List).Select(c => c.Name).ToArray();
        if (numeric.Length > 0 && (f < 0 || numeric.Length == f))
        {
            return FeatureMapping(sha256, input, numeric, byName, f, SelectedFromData);
        }

        if (lists.Length == 1)
        {
            return ListMapping(sha256, input, lists[0], f);
        }

        if (numeric.Length == 0 && lists.Length == 0)
        {
            throw new InputMappingException($"Model input '{input.Name}' needs {FeatureText(f)} but the data has no numeric or list columns besides key/passthrough columns ({Count(columns.Count)} in all).");
        }

        if (lists.Length > 1 && numeric.Length == 0)
        {
            throw new InputMappingException($"Model input '{input.Name}' needs {FeatureText(f)}; {lists.Length} list columns could supply them: name the one to use as the only feature column.");
        }

        throw new InputMappingException(
            $"Model expects {f} features but {numeric.Length} numeric columns were selected (every numeric column besides key/passthrough columns); name the {f} to use with Features.");
    }

    private static InputMapping FeatureMapping(string sha256, TensorInfo input, IReadOnlyList<string> features, Dictionary<string, ColumnKind> byName, int f, string how)
    {
        var missing = features.Where(name => !byName.ContainsKey(name)).ToArray();
        if (missing.Length > 0)
        {
            throw new InputMappingException($"Feature column{(missing.Length == 1 ? string.Empty : "s")} {string.Join(", ", missing.Select(m => $"'{m}'"))} not found in the data (column names are case-sensitive).");
        }

        var duplicates = features.GroupBy(x => x, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
        if (duplicates.Length > 0)
        {
            throw new InputMappingException($"Feature column list names {string.Join(", ", duplicates.Select(d => $"'{d}'"))} more than once.");
        }

        var wrongType = features.Where(name => !IsNumeric(byName[name])).ToArray();
        if (wrongType.Length > 0)
        {
            throw new InputMappingException($"Model input '{input.Name}' ({ElementText(input)}) needs numeric feature columns, but {string.Join(", ", wrongType.Select(w => $"'{w}' is {byName[w]}"))}.");
        }

        if (f >= 0 && features.Count != f)
        {
            // Selected names come from the data: give their number only (errors never echo a file's contents).
            throw new InputMappingException(how == SelectedFromData
                ? $"Model expects {f} features but {features.Count} columns {how}; name the {f} to use with Features."
                : $"Model expects {f} features but {features.Count} columns {how}: {string.Join(", ", features)}");
        }

        var bindings = features.Select(name => new InputBinding(input.Name, name, byName[name])).ToArray();
        return new InputMapping(sha256, InputMappingMode.FeatureColumns, bindings, features.Count);
    }

    private static InputMapping ListMapping(string sha256, TensorInfo input, string column, int f) =>
        new(sha256, InputMappingMode.ListColumn, [new InputBinding(input.Name, column, ColumnKind.Float32List)], f);

    private static InputMapping MapPerInput(ModelSignature signature, string sha256, IReadOnlyList<(string Name, ColumnKind Kind)> columns, Dictionary<string, ColumnKind> byName)
    {
        var bindings = new List<InputBinding>();
        var problems = new List<string>();
        foreach (var input in signature.Inputs)
        {
            var column = FindColumn(input.Name, columns);
            if (column is null)
            {
                problems.Add($"Model input '{input.Name}' ({ElementText(input)}) has no matching column among the data's {Count(columns.Count)}.");
                continue;
            }

            var kind = byName[column];
            var reason = Incompatibility(input, kind);
            if (reason is not null)
            {
                problems.Add($"Model input '{input.Name}' ({ElementText(input)}) cannot be fed from column '{column}' ({kind}): {reason}");
                continue;
            }

            bindings.Add(new InputBinding(input.Name, column, kind));
        }

        if (problems.Count > 0)
        {
            throw new InputMappingException(string.Join(Environment.NewLine, problems));
        }

        return new InputMapping(sha256, InputMappingMode.PerInput, bindings, 0);
    }

    private static string? FindColumn(string inputName, IReadOnlyList<(string Name, ColumnKind Kind)> columns)
    {
        foreach (var (name, _) in columns)
        {
            if (string.Equals(name, inputName, StringComparison.Ordinal))
            {
                return name;
            }
        }

        var folded = columns.Where(c => string.Equals(c.Name, inputName, StringComparison.OrdinalIgnoreCase)).ToArray();
        return folded.Length == 1 ? folded[0].Name : null;
    }

    /// <summary>Why a column of <paramref name="kind"/> cannot feed <paramref name="input"/>, or null if it can.</summary>
    internal static string? Incompatibility(TensorInfo input, ColumnKind kind)
    {
        var perRow = ValuesPerRow(input);
        if (kind == ColumnKind.Float32List)
        {
            if (input.ElementType is not (TensorElementKind.Float or TensorElementKind.Double) || input.Shape.Length < 2)
            {
                return "a list column can only feed a float input of shape [N, F] or a fixed-shape tensor such as [N, C, H, W]";
            }

            return input.Shape.Length > 2 && perRow < 0
                ? "the input's non-batch dimensions are not all fixed, so a list cannot be reshaped to it"
                : null;
        }

        if (perRow is not (1 or -1))
        {
            return $"the input takes {perRow} values per row; feed it from a list column";
        }

        return input.ElementType switch
        {
            TensorElementKind.Float or TensorElementKind.Double => IsNumeric(kind) ? null : "needs a numeric column",
            TensorElementKind.Int64 or TensorElementKind.Int32 => kind is ColumnKind.Int32 or ColumnKind.Int64 or ColumnKind.Boolean
                ? null
                : "needs an integer column (Int32, Int64 or Boolean)",
            TensorElementKind.Bool => kind == ColumnKind.Boolean ? null : "needs a Boolean column",
            TensorElementKind.String => kind == ColumnKind.String ? null : "needs a String column",
            _ => $"{input.ElementType} inputs are not supported",
        };
    }

    /// <summary>Product of the non-batch dimensions; -1 when one of them is symbolic.</summary>
    internal static long ValuesPerRow(TensorInfo input)
    {
        long perRow = 1;
        for (var d = 1; d < input.Shape.Length; d++)
        {
            if (input.Shape[d] < 0)
            {
                return -1;
            }

            perRow *= input.Shape[d];
        }

        return perRow;
    }

    internal static bool IsNumeric(ColumnKind kind) => kind is ColumnKind.Float32 or ColumnKind.Float64 or ColumnKind.Int32 or ColumnKind.Int64 or ColumnKind.Boolean;

    private static string FeatureText(int f) => f < 0 ? "feature values" : $"{f} feature values";

    internal static string ElementText(TensorInfo input) =>
        $"{input.ElementType.ToString().ToLowerInvariant()}[{string.Join(", ", input.Shape.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]";

    private const string SelectedFromData = "were selected";

    internal static string Count(int columns) => columns == 1 ? "1 column" : $"{columns} columns";

    private static string Describe(IReadOnlyList<TensorInfo> inputs) => string.Join("; ", inputs.Select(i => i.ToString()));
}
