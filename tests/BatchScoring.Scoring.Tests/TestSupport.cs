using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;

namespace BatchScoring.Scoring.Tests;

internal static class TestSupport
{
    public static ScoringSessionOptions CpuOptions => new() { PreferCuda = false, IntraOpThreads = 1 };

    /// <summary>Waits until <paramref name="condition"/> holds, checking every 5 ms; fails with <paramref name="what"/> after 10 s.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(5, cancellationToken);
        }
    }

    public static float[] RandomMatrix(int rows, int cols, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var data = new float[rows * cols];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)(((random.NextDouble() * 2) - 1) * scale);
        }

        return data;
    }

    /// <summary>One Float32 column per feature, named f0..f{cols-1}, from a row-major matrix.</summary>
    public static List<BatchColumn> FeatureColumns(float[] matrix, int rows, int cols, string prefix = "f")
    {
        var columns = new List<BatchColumn>();
        for (var j = 0; j < cols; j++)
        {
            var values = new float[rows];
            for (var i = 0; i < rows; i++)
            {
                values[i] = matrix[(i * cols) + j];
            }

            columns.Add(new BatchColumn($"{prefix}{j}", ColumnKind.Float32, values));
        }

        return columns;
    }

    public static BatchColumn KeyColumn(int rows, string name = "id") =>
        new(name, ColumnKind.Int64, Enumerable.Range(0, rows).Select(i => 1000L + i).ToArray());

    public static IReadOnlyList<(string Name, ColumnKind Kind)> Schema(ColumnBatch batch) =>
        batch.Columns.Select(c => (c.Name, c.Kind)).ToArray();

    public static float[] Row(float[] matrix, int row, int cols) => matrix.AsSpan(row * cols, cols).ToArray();
}

/// <summary>Collects log lines for assertions.</summary>
internal sealed class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message)> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries)
        {
            Entries.Add((logLevel, formatter(state, exception)));
        }
    }
}
