using System.Diagnostics;
using System.Text.Json;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Drift;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application.Drift;

/// <summary>
/// The drift sample of one chunk (or one request batch): a <see cref="RowReservoir"/> over its scored rows, fed batch
/// by batch, holding copies of the chosen rows' feature and output values (numbers and strings) so the batches can be
/// reused. Serialized as column-major JSON, <c>{"column": [value, ...]}</c>, nulls and non-finite numbers as null.
/// </summary>
internal sealed class ChunkSample
{
    private readonly RowReservoir _reservoir;
    private readonly object _gate = new();

    // Columns in first-seen order: features, then outputs not named like a feature (the feature wins, as in profiles).
    private readonly List<(string Name, double[]? Numbers, string?[]? Texts)> _columns = [];

    public ChunkSample(string model, int version, string source, int capacity, Random random)
    {
        Model = model;
        Version = version;
        Source = source;
        _reservoir = new RowReservoir(capacity, random);
        LastAddedAt = Stopwatch.GetTimestamp();
    }

    public string Model { get; }

    public int Version { get; }

    public string Source { get; }

    /// <summary>Rows in the sample so far.</summary>
    public int Rows => _reservoir.Count;

    /// <summary><see cref="Stopwatch"/> timestamp of the last batch.</summary>
    public long LastAddedAt { get; private set; }

    /// <summary>Offers the batch's scored rows to the reservoir and copies the ones that enter it.</summary>
    public void Add(ColumnBatch input, InputMapping mapping, ScoreResult result)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(result);
        lock (_gate)
        {
            LastAddedAt = Stopwatch.GetTimestamp();
            var picks = _reservoir.Offer(result.ScoredRows.Length);
            if (picks.Count == 0)
            {
                return;
            }

            // pick i: position p in the scored rows (outputs are indexed by it), row ScoredRows[p] of the input.
            var positions = picks.Select(p => p.Item).ToArray();
            var inputRows = positions.Select(p => result.ScoredRows[p]).ToArray();
            var slots = picks.Select(p => p.Slot).ToArray();
            var features = new HashSet<string>(StringComparer.Ordinal);
            foreach (var name in mapping.Bindings.Select(b => b.Column).Distinct(StringComparer.Ordinal))
            {
                if (input.Find(name) is { } column && Sampled(column))
                {
                    features.Add(name);
                    Copy(column, inputRows, slots);
                }
            }

            foreach (var column in result.Outputs.Columns.Where(c => Sampled(c) && !features.Contains(c.Name)))
            {
                Copy(column, positions, slots);
            }
        }
    }

    public byte[] ToJson()
    {
        lock (_gate)
        {
            var rows = _reservoir.Count;
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                foreach (var (name, numbers, texts) in _columns)
                {
                    writer.WriteStartArray(name);
                    for (var row = 0; row < rows; row++)
                    {
                        if (numbers is not null && double.IsFinite(numbers[row]))
                        {
                            writer.WriteNumberValue(numbers[row]);
                        }
                        else if (texts?[row] is { } text)
                        {
                            writer.WriteStringValue(text);
                        }
                        else
                        {
                            writer.WriteNullValue();
                        }
                    }

                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            return buffer.ToArray();
        }
    }

    /// <summary>Numbers and strings; lists and timestamps are not profiled.</summary>
    private static bool Sampled(BatchColumn column) => column.IsNumeric || column.Kind == ColumnKind.String;

    private void Copy(BatchColumn column, int[] rows, int[] slots)
    {
        var index = _columns.FindIndex(c => c.Name == column.Name);
        if (index < 0)
        {
            // A column first seen now (it cannot be in earlier slots of this chunk): missing there.
            var numbers = column.IsNumeric ? Filled(new double[_reservoir.Capacity], double.NaN) : null;
            _columns.Add((column.Name, numbers, column.IsNumeric ? null : new string?[_reservoir.Capacity]));
            index = _columns.Count - 1;
        }

        var (_, target, texts) = _columns[index];
        var i = 0;
        ColumnValues.Feed(
            column,
            rows,
            number: value =>
            {
                if (target is not null)
                {
                    target[slots[i]] = value;
                }

                i++;
            },
            text: value =>
            {
                if (texts is not null)
                {
                    texts[slots[i]] = value;
                }

                i++;
            },
            missing: () =>
            {
                if (target is not null)
                {
                    target[slots[i]] = double.NaN;
                }
                else
                {
                    texts![slots[i]] = null;
                }

                i++;
            });
    }

    private static double[] Filled(double[] values, double value)
    {
        Array.Fill(values, value);
        return values;
    }
}
