namespace BatchScoring.Contracts;

/// <summary>A model version's inputs and outputs as the API and the CLI report them (read from the ONNX file at registration).</summary>
/// <param name="Inputs">The model's inputs, in the file's order.</param>
/// <param name="Outputs">The model's outputs, in the file's order.</param>
/// <param name="FeatureNames">The <c>feature_names</c> metadata entry as a list (null when the file has none).</param>
/// <param name="Metadata">The file's other custom metadata entries.</param>
public sealed record ModelSignatureInfo(
    IReadOnlyList<ModelTensorInfo> Inputs, IReadOnlyList<ModelTensorInfo> Outputs, IReadOnlyList<string>? FeatureNames, IReadOnlyDictionary<string, string> Metadata);

/// <summary>One input or output of a model.</summary>
/// <param name="Name">The ONNX name.</param>
/// <param name="Kind"><c>tensor</c>, <c>sequence</c>, <c>map</c>, <c>optional</c>, <c>sparse_tensor</c> or <c>unknown</c>.</param>
/// <param name="ElementType">Element type of a tensor, or value type of a map (<c>float</c>, <c>double</c>, <c>int64</c>, <c>string</c> ...).</param>
/// <param name="Shape">Dimensions; -1 for a symbolic one (the batch dimension N). Empty for non-tensors.</param>
public sealed record ModelTensorInfo(string Name, string Kind, string ElementType, IReadOnlyList<long> Shape)
{
    /// <summary>Key type of a map, or of the maps in a sequence (ZipMap); null otherwise.</summary>
    public string? KeyType { get; init; }

    /// <summary>What a sequence holds (<c>map</c> for ZipMap); null otherwise.</summary>
    public string? ElementKind { get; init; }

    /// <summary>The same in one line, e.g. <c>input: float[N, 4]</c>.</summary>
    public string Display { get; init; } = "";
}

/// <summary>
/// What differs between the signature of the version an alias points at (<c>from</c>) and the version it would move to
/// (<c>to</c>). <see cref="Compatible"/> is false when any difference is breaking (docs/model-registry.md defines which are).
/// </summary>
public sealed record SignatureDiff(bool Compatible, TensorListDiff Inputs, TensorListDiff Outputs, FeatureNamesChange? FeatureNames)
{
    /// <summary>The breaking differences in one line, e.g. <c>input 'input' shape [N, 4] → [N, 5]; output 'score' removed</c>; empty when compatible.</summary>
    public string Summary { get; init; } = "";
}

/// <summary>Inputs (or outputs) only one side has, and those both have that differ.</summary>
public sealed record TensorListDiff(IReadOnlyList<ModelTensorInfo> Added, IReadOnlyList<ModelTensorInfo> Removed, IReadOnlyList<TensorChange> Changed);

/// <summary>An input or output both versions have, with what differs.</summary>
/// <param name="Name">The input's or output's name.</param>
/// <param name="From">It in the version the alias points at.</param>
/// <param name="To">It in the version the alias would move to.</param>
/// <param name="Differences">What differs, e.g. <c>elementType float → double</c>, <c>shape [N, 4] → [N, 5]</c>.</param>
/// <param name="Breaking">False only for a change that accepts everything the old one did (an input dimension that became symbolic).</param>
public sealed record TensorChange(string Name, ModelTensorInfo From, ModelTensorInfo To, IReadOnlyList<string> Differences, bool Breaking);

/// <summary>The feature-name lists of both versions, when they differ (null: the file has none).</summary>
public sealed record FeatureNamesChange(IReadOnlyList<string>? From, IReadOnlyList<string>? To);

/// <summary>The answer to <c>DELETE /api/models/{name}/versions/{version}</c>.</summary>
/// <param name="Name">The model.</param>
/// <param name="Version">The deleted version (its number is not given to a later version).</param>
/// <param name="Sha256">The SHA-256 of its file.</param>
/// <param name="FileRemoved">True when no other version (of any model) stores the same bytes, so the file was deleted.</param>
public sealed record ModelVersionDeleted(string Name, int Version, string Sha256, bool FileRemoved);
