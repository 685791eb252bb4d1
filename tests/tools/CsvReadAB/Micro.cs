using CsvNumbersLocal = BatchScoring.Scoring.Data.CsvNumbers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using csFastFloat;

internal static class Micro
{
    public static void Run(string path)
    {
        var lines = File.ReadLines(path).Skip(1).Take(50_000).ToArray();
        var fields = lines.SelectMany(l => l.Split(',').Skip(2)).ToArray();
        var bytes = fields.Select(Encoding.UTF8.GetBytes).ToArray();
        var flat = bytes.SelectMany(b => b).ToArray();
        var starts = new int[bytes.Length + 1];
        for (var i = 0; i < bytes.Length; i++) starts[i + 1] = starts[i] + bytes[i].Length;
        var chars = string.Concat(fields);
        var cstarts = new int[fields.Length + 1];
        for (var i = 0; i < fields.Length; i++) cstarts[i + 1] = cstarts[i] + fields[i].Length;
        for (var round = 0; round < 3; round++)
        {
            Time("net-utf8", () => { double s = 0; for (var i = 0; i < bytes.Length; i++) { double.TryParse(flat.AsSpan(starts[i], starts[i + 1] - starts[i]), NumberStyles.Float, CultureInfo.InvariantCulture, out var d); s += d; } return s; });
            Time("ff-utf8", () => { double s = 0; for (var i = 0; i < bytes.Length; i++) { FastDoubleParser.TryParseDouble(flat.AsSpan(starts[i], starts[i + 1] - starts[i]), out int c, out var d); s += d; } return s; });
            Time("ff-utf8-ptr", () => { double s = 0; unsafe { fixed (byte* p = flat) { for (var i = 0; i < bytes.Length; i++) { s += FastDoubleParser.ParseDouble(p + starts[i], p + starts[i + 1], out int c); } } } return s; });
            Time("ff-char", () => { double s = 0; for (var i = 0; i < fields.Length; i++) { FastDoubleParser.TryParseDouble(chars.AsSpan(cstarts[i], cstarts[i + 1] - cstarts[i]), out int c, out var d); s += d; } return s; });
            Time("csv-numbers", () => { double s = 0; for (var i = 0; i < bytes.Length; i++) { CsvNumbersLocal.TryParseDouble(flat.AsSpan(starts[i], starts[i + 1] - starts[i]), out var d); s += d; } return s; });
            Time("ff-float-utf8", () => { double s = 0; for (var i = 0; i < bytes.Length; i++) { FastFloatParser.TryParseFloat(flat.AsSpan(starts[i], starts[i + 1] - starts[i]), out int c, out float d); s += d; } return s; });
        }

        void Time(string name, Func<double> f)
        {
            var sw = Stopwatch.StartNew();
            var s = f();
            Console.WriteLine($"{name,-14} {sw.Elapsed.TotalMilliseconds * 1e6 / bytes.Length,6:F1} ns/value  ({s:F3})");
        }
    }
}
