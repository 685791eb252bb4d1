using System.Text.Json.Serialization;

namespace BatchScoring.Scoring.Onnx;

/// <summary>Element type of a tensor (or of a map's values).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TensorElementKind>))]
public enum TensorElementKind
{
    Unknown,
    Float,
    Double,
    Float16,
    BFloat16,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    String,
    Bool,
}

/// <summary>What kind of ONNX value an input or output is.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ValueKind>))]
public enum ValueKind
{
    Tensor,
    Sequence,
    Map,
    Optional,
    SparseTensor,
    Unknown,
}

/// <summary>
/// One model input or output. For tensors, <see cref="Shape"/> has -1 for symbolic dimensions (the batch
/// dimension "N"). For a map, or a sequence of maps (ZipMap), <see cref="ElementType"/> is the value type
/// and <see cref="KeyType"/> the key type; <see cref="ElementKind"/> says what a sequence holds.
/// </summary>
public sealed record TensorInfo(string Name, TensorElementKind ElementType, long[] Shape, ValueKind Kind)
{
    public TensorElementKind? KeyType { get; init; }

    public ValueKind? ElementKind { get; init; }

    /// <summary>Names of the symbolic dimensions ("" for fixed ones), when known.</summary>
    public string[]? SymbolicDimensions { get; init; }

    public override string ToString() => Kind switch
    {
        ValueKind.Tensor => $"{Name}: {ElementType.ToString().ToLowerInvariant()}[{string.Join(", ", Shape.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]",
        ValueKind.Sequence when ElementKind == ValueKind.Map => $"{Name}: seq(map({KeyType.ToString()!.ToLowerInvariant()}, {ElementType.ToString().ToLowerInvariant()}))",
        ValueKind.Map => $"{Name}: map({KeyType.ToString()!.ToLowerInvariant()}, {ElementType.ToString().ToLowerInvariant()})",
        _ => $"{Name}: {Kind.ToString().ToLowerInvariant()}",
    };
}

/// <summary>A model's inputs, outputs and custom metadata. Serialises with System.Text.Json.</summary>
public sealed record ModelSignature(IReadOnlyList<TensorInfo> Inputs, IReadOnlyList<TensorInfo> Outputs, IReadOnlyDictionary<string, string> Metadata)
{
    public const string FeatureNamesKey = "feature_names";

    /// <summary>Feature names from the "feature_names" metadata entry (comma-separated), or null.</summary>
    public IReadOnlyList<string>? FeatureNames => Metadata.TryGetValue(FeatureNamesKey, out var names) && !string.IsNullOrWhiteSpace(names)
        ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        : null;
}
