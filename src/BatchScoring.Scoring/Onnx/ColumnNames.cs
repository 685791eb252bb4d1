using System.Text;

namespace BatchScoring.Scoring.Onnx;

/// <summary>Turns model output names and class labels into lower-case SQL-friendly identifiers.</summary>
public static class ColumnNames
{
    /// <summary>Lower-cases and replaces every character outside [a-z0-9_] with '_'; prefixes '_' if it would start with a digit.</summary>
    public static string Sanitize(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var sb = new StringBuilder(name.Length + 1);
        foreach (var ch in name.ToLowerInvariant())
        {
            sb.Append(ch is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' ? ch : '_');
        }

        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
        {
            sb.Insert(0, '_');
        }

        return sb.ToString();
    }
}
