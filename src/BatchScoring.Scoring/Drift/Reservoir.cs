namespace BatchScoring.Scoring.Drift;

/// <summary>
/// A uniform random sample of at most <c>capacity</c> values from a stream of unknown length (Algorithm R), so
/// quantiles and KS can be computed from any number of rows in fixed memory. Seeded: same stream, same sample.
/// </summary>
internal sealed class Reservoir
{
    private readonly int _capacity;
    private readonly Random _random;
    private double[] _values;
    private int _length;

    public Reservoir(int capacity, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _random = new Random(seed);
        // Grow on demand, but never past the capacity: a column with few rows should not cost a full sample.
        _values = new double[Math.Min(capacity, 1024)];
    }

    /// <summary>Values offered so far (the sample holds min(Seen, capacity) of them).</summary>
    public long Seen { get; private set; }

    public int Length => _length;

    public void Add(double value)
    {
        Seen++;
        if (_length < _capacity)
        {
            if (_length == _values.Length)
            {
                Array.Resize(ref _values, (int)Math.Min((long)_values.Length * 2, _capacity));
            }

            _values[_length++] = value;
            return;
        }

        // Keep the new value with probability capacity / Seen, in place of a uniformly chosen one.
        var slot = _random.NextInt64(Seen);
        if (slot < _capacity)
        {
            _values[slot] = value;
        }
    }

    public ReadOnlySpan<double> Values => _values.AsSpan(0, _length);

    public double[] SortedCopy()
    {
        var copy = Values.ToArray();
        Array.Sort(copy);
        return copy;
    }
}
