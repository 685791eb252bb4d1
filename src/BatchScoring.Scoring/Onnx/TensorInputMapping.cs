using System.Globalization;
using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Onnx;

/// <summary>
/// Models whose single input is a float tensor of rank 3 or more with fixed non-batch dimensions (an image
/// [N, C, H, W], a sequence [N, T, F]): each row's values come from one list column of C·H·W values, row-major
/// (nested lists are read flattened in the same order), and are reshaped to the input's shape.
/// </summary>
public static class TensorInputMapping
{
    internal static bool IsTensorInput(TensorInfo input) =>
        input.ElementType is TensorElementKind.Float or TensorElementKind.Double && input.Shape.Length > 2;

    internal static InputMapping Map(
        string sha256, TensorInfo input, IReadOnlyList<(string Name, ColumnKind Kind)> columns, Dictionary<string, ColumnKind> byName, InputMappingRequest request)
    {
        var perRow = InputMapper.ValuesPerRow(input);
        var expected = Expected(input, perRow);
        if (perRow < 0)
        {
            throw new InputMappingException(
                $"Model input '{input.Name}' is {InputMapper.ElementText(input)}: its dimensions after the batch dimension are not all fixed, so a list column cannot be reshaped to it. Export the model with a fixed input shape.");
        }

        if (perRow > int.MaxValue)
        {
            throw new InputMappingException($"Model input '{input.Name}' is {InputMapper.ElementText(input)}: {perRow:N0} values per row is more than one row can hold.");
        }

        string column;
        if (request.Features is { } features)
        {
            if (features.Count != 1 || !byName.TryGetValue(features[0], out var kind) || kind != ColumnKind.Float32List)
            {
                throw new InputMappingException(
                    $"Model input '{input.Name}' expects {expected}; name exactly one list column as the feature column (was: {string.Join(", ", features.Select(f => $"'{f}'"))}"
                    + $"{(features.Count == 1 && byName.TryGetValue(features[0], out var given) ? $", which is {given}" : features.Count == 1 ? ", which is not in the data" : string.Empty)}).");
            }

            column = features[0];
        }
        else
        {
            var excluded = new HashSet<string>(request.Passthrough, StringComparer.Ordinal);
            if (request.KeyColumn is not null)
            {
                excluded.Add(request.KeyColumn);
            }

            var named = columns.Where(c => c.Name == input.Name).Select(c => c.Name).FirstOrDefault()
                ?? (columns.Where(c => string.Equals(c.Name, input.Name, StringComparison.OrdinalIgnoreCase)).Select(c => c.Name).ToArray() is [var only] ? only : null);
            var lists = columns.Where(c => !excluded.Contains(c.Name) && c.Kind == ColumnKind.Float32List).Select(c => c.Name).ToArray();
            if (named is not null && byName[named] != ColumnKind.Float32List)
            {
                throw new InputMappingException($"Model input '{input.Name}' expects {expected}, but column '{named}' is {byName[named]}, not a list.");
            }

            column = named ?? (lists.Length == 1
                ? lists[0]
                : throw new InputMappingException(lists.Length == 0
                    ? $"Model input '{input.Name}' expects {expected}, but the data has no list column (found {InputMapper.Count(columns.Count)}, none a list of numbers)."
                    : $"Model input '{input.Name}' expects {expected}; {lists.Length} list columns could supply it: name the one to use as the only feature column (Features), or name it '{input.Name}'."));
        }

        return new InputMapping(sha256, InputMappingMode.ListColumn, [new InputBinding(input.Name, column, ColumnKind.Float32List)], (int)perRow);
    }

    /// <summary>
    /// Checks the first rows of the input against the list widths the mapping needs; throws an
    /// <see cref="InputMappingException"/> naming the input, its shape and the width found when no sampled row of a
    /// list column has the width its input needs (single rows of a wrong width fail one by one when scored).
    /// </summary>
    public static void EnsureListWidths(ScoringModel model, InputMapping mapping, ColumnBatch sample)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(sample);
        foreach (var binding in mapping.Bindings.Where(b => b.ColumnKind == ColumnKind.Float32List))
        {
            var input = model.Signature.Inputs.First(i => i.Name == binding.InputName);
            var width = mapping.Mode == InputMappingMode.ListColumn ? mapping.FeatureCount : InputMapper.ValuesPerRow(input);
            if (width <= 0 || sample.Find(binding.Column) is not { } column)
            {
                continue;
            }

            var lists = column.As<float[]?>();
            var widths = Enumerable.Range(0, lists.Length).Where(i => !column.IsNull(i) && lists[i] is { Length: > 0 }).Select(i => lists[i]!.Length).ToArray();
            if (widths.Length > 0 && !widths.Contains((int)width))
            {
                var found = widths.Distinct().Order().Take(3).Select(w => w.ToString("N0", CultureInfo.InvariantCulture));
                throw new InputMappingException(
                    $"Model input '{input.Name}' expects {Expected(input, width)}, but column '{binding.Column}' holds lists of {string.Join(" or ", found)} values (in the first {widths.Length:N0} rows read).");
            }
        }
    }

    /// <summary>The tensor shape of <paramref name="rows"/> rows of a list-fed input: [n, F] or [n, C, H, W].</summary>
    internal static long[] ListShape(TensorInfo input, int rows, int width)
    {
        if (input.Shape.Length <= 2)
        {
            return [rows, width];
        }

        var shape = new long[input.Shape.Length];
        shape[0] = rows;
        for (var d = 1; d < shape.Length; d++)
        {
            shape[d] = input.Shape[d];
        }

        return shape;
    }

    private static string Expected(TensorInfo input, long perRow) =>
        perRow > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{InputMapper.ElementText(input)} ({perRow:N0} values per row: one list column, row-major, or nested lists of that shape)")
            : InputMapper.ElementText(input);
}
