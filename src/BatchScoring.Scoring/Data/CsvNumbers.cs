using System.Globalization;
using csFastFloat;

namespace BatchScoring.Scoring.Data;

/// <summary>
/// Floating-point numbers from UTF-8 field bytes. The fast path (fast_float, correctly rounded like .NET's parser) takes
/// plain finite numbers that it reads whole; everything else (NaN, infinities, whitespace it stops at, bad values) goes to
/// .NET's invariant-culture parser, so what parses, and to which value, is what <c>double.TryParse</c> says.
/// </summary>
internal static class CsvNumbers
{
    public static bool TryParseDouble(ReadOnlySpan<byte> text, out double value) =>
        (FastDoubleParser.TryParseDouble(text, out var consumed, out value) && consumed == text.Length && double.IsFinite(value))
        || double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    public static bool TryParseSingle(ReadOnlySpan<byte> text, out float value) =>
        (FastFloatParser.TryParseFloat(text, out var consumed, out value) && consumed == text.Length && float.IsFinite(value))
        || float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
}
