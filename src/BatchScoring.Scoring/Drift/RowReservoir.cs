namespace BatchScoring.Scoring.Drift;

/// <summary>
/// Chooses a uniform random sample of at most <see cref="Capacity"/> items from a stream that arrives in batches of
/// unknown number and size: every item seen so far is in the sample with the same probability, whatever the order of
/// the stream (evenly spaced picks alias with periodic row orders; this does not). Algorithm L (Li, 1994): after the
/// reservoir is full it draws how many items to skip, so a batch costs time in the items kept, not the items seen.
/// Seeded: the same stream and seed choose the same items.
/// </summary>
public sealed class RowReservoir
{
    private readonly Random _random;
    private double _weight;
    private long _nextPick;

    public RowReservoir(int capacity, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentNullException.ThrowIfNull(random);
        Capacity = capacity;
        _random = random;
    }

    public int Capacity { get; }

    /// <summary>Items offered so far.</summary>
    public long Seen { get; private set; }

    /// <summary>Items in the sample: min(<see cref="Seen"/>, <see cref="Capacity"/>).</summary>
    public int Count => (int)Math.Min(Seen, Capacity);

    /// <summary>
    /// Offers the next <paramref name="count"/> items of the stream and returns the ones that enter the sample, as
    /// (index in this batch, slot) in stream order: a later pick may replace an earlier one in the same slot, so apply
    /// them in order.
    /// </summary>
    public IReadOnlyList<(int Item, int Slot)> Offer(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var picks = new List<(int Item, int Slot)>();
        var start = Seen;
        var end = start + count;

        // Filling: the first Capacity items all enter, in order.
        for (var index = start; index < end && index < Capacity; index++)
        {
            picks.Add(((int)(index - start), (int)index));
            if (index == Capacity - 1)
            {
                _weight = Math.Exp(Math.Log(Uniform()) / Capacity);
                _nextPick = index + Skip();
            }
        }

        // Full: the next pick replaces a uniformly chosen slot; the gap to the one after it is geometric.
        while (Seen + count > Capacity && _nextPick < end)
        {
            picks.Add(((int)(_nextPick - start), _random.Next(Capacity)));
            _weight *= Math.Exp(Math.Log(Uniform()) / Capacity);
            _nextPick += Skip();
        }

        Seen = end;
        return picks;
    }

    /// <summary>Distance to the next picked item: 1 + floor(ln U / ln(1 − W)), saturating rather than overflowing.</summary>
    private long Skip()
    {
        var gap = Math.Floor(Math.Log(Uniform()) / Math.Log(1 - _weight));
        return double.IsFinite(gap) && gap < long.MaxValue / 4 ? 1 + (long)gap : long.MaxValue / 4;
    }

    /// <summary>Uniform on (0, 1): the logarithms stay finite.</summary>
    private double Uniform()
    {
        double u;
        do
        {
            u = _random.NextDouble();
        }
        while (u == 0);

        return u;
    }
}
