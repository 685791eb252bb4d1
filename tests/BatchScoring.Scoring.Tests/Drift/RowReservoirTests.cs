using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary><see cref="RowReservoir"/>: a uniform sample of a stream fed in batches, whatever the batch sizes.</summary>
public sealed class RowReservoirTests
{
    /// <summary>Runs a stream through a reservoir and returns the stream indices it kept.</summary>
    private static long[] Sample(int capacity, IEnumerable<int> batches, Random random)
    {
        var reservoir = new RowReservoir(capacity, random);
        var slots = new long[capacity];
        long offset = 0;
        foreach (var batch in batches)
        {
            foreach (var (item, slot) in reservoir.Offer(batch))
            {
                Assert.InRange(item, 0, batch - 1);
                slots[slot] = offset + item;
            }

            offset += batch;
        }

        Assert.Equal(offset, reservoir.Seen);
        return slots[..reservoir.Count];
    }

    [Fact]
    public void Keeps_everything_until_full_then_exactly_its_capacity_of_distinct_items()
    {
        Assert.Equal([0L, 1, 2, 3, 4], Sample(10, [3, 2], new Random(1)));
        var kept = Sample(100, [7, 1, 0, 500, 8_192, 3], new Random(2));
        Assert.Equal(100, kept.Length);
        Assert.Equal(100, kept.Distinct().Count());
        Assert.All(kept, i => Assert.InRange(i, 0, 8_702));
    }

    [Fact]
    public void The_same_seed_keeps_the_same_items()
    {
        Assert.Equal(Sample(64, [5_000, 5_000], new Random(3)), Sample(64, [5_000, 5_000], new Random(3)));
        Assert.NotEqual(Sample(64, [5_000, 5_000], new Random(3)), Sample(64, [5_000, 5_000], new Random(4)));
    }

    [Fact]
    public void Every_item_of_the_stream_is_equally_likely_to_be_kept()
    {
        // 1,000 items in uneven batches, 50 kept, 20,000 runs: each item is expected 1,000 times.
        const int items = 1_000, capacity = 50, runs = 20_000;
        var counts = new int[items];
        var random = new Random(5);
        int[] batches = [1, 31, 32, 8, 200, 128, 600];
        for (var run = 0; run < runs; run++)
        {
            foreach (var index in Sample(capacity, batches, random))
            {
                counts[index]++;
            }
        }

        // Chi-square against uniform: df 999, mean 999, sd ≈ 44.7; 5 sd above is p < 1e-6 for a correct sampler.
        var expected = (double)runs * capacity / items;
        var statistic = counts.Sum(c => (c - expected) * (c - expected) / expected);
        Assert.InRange(statistic, 999 - (5 * 44.7), 999 + (5 * 44.7));

        // No position bias: each tenth of the stream holds a tenth of the picks (± 2%).
        for (var tenth = 0; tenth < 10; tenth++)
        {
            Assert.InRange(counts.Skip(tenth * 100).Take(100).Sum() / (double)(runs * capacity), 0.098, 0.102);
        }
    }
}
