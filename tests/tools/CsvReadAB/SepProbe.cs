using nietras.SeparatedValues;
internal static class SepProbe
{
    public static void Run()
    {
        var text = "h1,h2\n1,2\r3,4\n5,x\"y,z\"w\n\n6,\"q\"\"r\"\n";
        using var reader = Sep.Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true }).FromText(text);
        foreach (var row in reader)
        {
            var cols = new List<string>();
            for (var i = 0; i < row.ColCount; i++) cols.Add("[" + row[i].ToString().Replace("\r", "\\r").Replace("\n", "\\n") + "]");
            Console.WriteLine($"line {row.LineNumberFrom}: {row.ColCount} cols: " + string.Join(" | ", cols));
        }
    }
}
