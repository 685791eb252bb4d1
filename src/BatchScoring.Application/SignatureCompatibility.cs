using System.Globalization;
using System.Text.Json;
using BatchScoring.Contracts;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application;

/// <summary>
/// Whether a model version can replace another behind an alias without breaking its callers, and the diff that says why
/// not. The rules (docs/model-registry.md, "Compatible signatures"):
/// <list type="bullet">
/// <item>Inputs: the same names; for each, the same kind, element type (and map key type) and rank, and every
/// dimension either symbolic in the new version or equal to the old one's fixed size. An old symbolic dimension that
/// became fixed is breaking (callers may feed other sizes); a fixed one that became symbolic is a non-breaking change.</item>
/// <item>Feature names: the same list in the same order (a list present on one side only counts as a difference),
/// because jobs map input columns to the model by these names.</item>
/// <item>Outputs: the same names with the same kind, element type, key type and shape (symbolic where the old one was).
/// Each output is one or more columns of the results table: a removed or changed output leaves columns unfilled or
/// retyped, an added one needs a column an existing results table does not have.</item>
/// </list>
/// </summary>
public static class SignatureCompatibility
{
    /// <summary>The diff from <paramref name="from"/> (the version the alias points at) to <paramref name="to"/>.</summary>
    public static SignatureDiff Compare(ModelSignatureInfo from, ModelSignatureInfo to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var inputs = CompareList(from.Inputs, to.Inputs, isInput: true);
        var outputs = CompareList(from.Outputs, to.Outputs, isInput: false);
        var featureNames = SameList(from.FeatureNames, to.FeatureNames) ? null : new FeatureNamesChange(from.FeatureNames, to.FeatureNames);

        var breaking = new List<string>();
        Describe("input", inputs, breaking);
        if (featureNames is not null)
        {
            breaking.Add($"feature names {List(featureNames.From)} → {List(featureNames.To)}");
        }

        Describe("output", outputs, breaking);
        return new SignatureDiff(breaking.Count == 0, inputs, outputs, featureNames) { Summary = string.Join("; ", breaking) };
    }

    /// <summary>The contract shape of a signature as <see cref="ScoringModel"/> reads it.</summary>
    public static ModelSignatureInfo ToInfo(ModelSignature signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        var metadata = signature.Metadata
            .Where(m => m.Key != ModelSignature.FeatureNamesKey)
            .ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        return new ModelSignatureInfo(signature.Inputs.Select(ToInfo).ToArray(), signature.Outputs.Select(ToInfo).ToArray(), signature.FeatureNames, metadata);
    }

    /// <summary>The signature stored with a version (<c>model_versions.signature</c>, the JSON of <see cref="ModelSignature"/>).</summary>
    public static ModelSignatureInfo FromStored(string json)
    {
        var signature = string.IsNullOrWhiteSpace(json) ? null : JsonSerializer.Deserialize<ModelSignature>(json);
        return signature is { Inputs: not null, Outputs: not null }
            ? ToInfo(signature with { Metadata = signature.Metadata ?? new Dictionary<string, string>() })
            : new ModelSignatureInfo([], [], null, new Dictionary<string, string>());
    }

    public static ModelTensorInfo ToInfo(TensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new ModelTensorInfo(tensor.Name, KindName(tensor.Kind), tensor.ElementType.ToString().ToLowerInvariant(), tensor.Shape ?? [])
        {
            KeyType = tensor.KeyType?.ToString().ToLowerInvariant(),
            ElementKind = tensor.ElementKind is { } kind ? KindName(kind) : null,
            Display = tensor.ToString(),
        };
    }

    private static string KindName(ValueKind kind) => kind == ValueKind.SparseTensor ? "sparse_tensor" : kind.ToString().ToLowerInvariant();

    private static TensorListDiff CompareList(IReadOnlyList<ModelTensorInfo> from, IReadOnlyList<ModelTensorInfo> to, bool isInput)
    {
        var before = from.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var after = to.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var changed = new List<TensorChange>();
        foreach (var old in from)
        {
            if (after.TryGetValue(old.Name, out var next) && Change(old, next, isInput) is { } change)
            {
                changed.Add(change);
            }
        }

        return new TensorListDiff(
            to.Where(t => !before.ContainsKey(t.Name)).ToArray(),
            from.Where(t => !after.ContainsKey(t.Name)).ToArray(),
            changed);
    }

    private static TensorChange? Change(ModelTensorInfo from, ModelTensorInfo to, bool isInput)
    {
        var differences = new List<string>();
        var breaking = false;
        void Differ(string what, string? a, string? b)
        {
            if (!string.Equals(a, b, StringComparison.Ordinal))
            {
                differences.Add($"{what} {a ?? "none"} → {b ?? "none"}");
                breaking = true;
            }
        }

        Differ("kind", from.Kind, to.Kind);
        Differ("elementType", from.ElementType, to.ElementType);
        Differ("keyType", from.KeyType, to.KeyType);
        Differ("elementKind", from.ElementKind, to.ElementKind);
        if (!from.Shape.SequenceEqual(to.Shape))
        {
            differences.Add($"shape {Shape(from.Shape)} → {Shape(to.Shape)}");
            breaking |= !isInput || !Accepts(from.Shape, to.Shape);
        }

        return differences.Count == 0 ? null : new TensorChange(from.Name, from, to, differences, breaking);
    }

    /// <summary>Whether an input of shape <paramref name="to"/> accepts every value one of shape <paramref name="from"/> accepted.</summary>
    private static bool Accepts(IReadOnlyList<long> from, IReadOnlyList<long> to) =>
        from.Count == to.Count && from.Zip(to).All(d => d.Second < 0 || (d.First >= 0 && d.First == d.Second));

    private static bool SameList(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a is null || b is null ? a is null && b is null : a.SequenceEqual(b, StringComparer.Ordinal);

    private static void Describe(string what, TensorListDiff diff, List<string> breaking)
    {
        breaking.AddRange(diff.Removed.Select(t => $"{what} '{t.Name}' removed"));
        breaking.AddRange(diff.Added.Select(t => $"{what} '{t.Name}' added"));
        breaking.AddRange(diff.Changed.Where(c => c.Breaking).Select(c => $"{what} '{c.Name}' {string.Join(", ", c.Differences)}"));
    }

    private static string Shape(IReadOnlyList<long> shape) =>
        "[" + string.Join(", ", shape.Select(d => d < 0 ? "N" : d.ToString(CultureInfo.InvariantCulture))) + "]";

    private static string List(IReadOnlyList<string>? names) => names is null ? "none" : "[" + string.Join(", ", names) + "]";
}
