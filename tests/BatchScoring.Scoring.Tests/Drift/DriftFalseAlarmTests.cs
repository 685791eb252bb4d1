using BatchScoring.Scoring.Drift;

namespace BatchScoring.Scoring.Tests.Drift;

/// <summary>
/// Audits the reference data against its own profile many times, as the worker samples and the auditor judges it:
/// chunks of 16,384 rows scored in 8,192-row batches, one reservoir sample per chunk, the drift rule with the
/// Bonferroni-corrected p-value. Nothing changed, so every drift verdict is a false alarm; the rate must stay at or
/// below the significance level whatever the row order (random, sorted by a feature, or periodic: rows exported
/// round-robin over 32 stores, where one feature depends on the store).
/// </summary>
public sealed class DriftFalseAlarmTests
{
    private const int Stores = 32, Rows = 65_536, ChunkRows = 16_384, BatchRows = 8_192;
    private const double Significance = 0.01;

    private static readonly Lazy<Reference> Data = new(() => Reference.Create(seed: 21));

    public static TheoryData<string, int, int> Orders => new()
    {
        // order, sampled rows per chunk, chunks audited (rows in the window = their product)
        { "random", 256, 4 },
        { "sorted", 256, 4 },
        { "periodic", 256, 4 },
        { "periodic", 100, 1 }, // exactly MinimumRows: the smallest window that is judged
        { "sorted", 25, 4 }, // a sorted file is only the reference as a whole: every chunk, few rows each
    };

    [Theory]
    [MemberData(nameof(Orders))]
    public void Auditing_the_reference_itself_alarms_at_most_at_the_significance_level(string order, int sampleRows, int chunks)
    {
        const int audits = 400;
        var data = Data.Value;
        var rows = data.Order(order, new Random(7));
        var random = new Random(8);
        var alarms = 0;
        var alarmed = new List<string>();
        for (var audit = 0; audit < audits; audit++)
        {
            if (order == "random")
            {
                random.Shuffle(rows);
            }

            // A different part of the file each time when only some chunks are audited.
            var firstChunk = audit % (Rows / ChunkRows);
            var sampled = new List<int>();
            for (var c = 0; c < chunks; c++)
            {
                sampled.AddRange(ReservoirSample(rows, ((firstChunk + c) % (Rows / ChunkRows)) * ChunkRows, sampleRows, random));
            }

            var drifted = data.Audit(sampled);
            if (drifted.Count > 0)
            {
                alarms++;
                alarmed.AddRange(drifted);
            }
        }

        // The alarm count of a correct rule is at most Binomial(400, 0.01): mean 4, sd ≈ 2. Allowing 3 sd above α
        // (rate ≤ 0.01 + 3·√(0.01·0.99/400) ≈ 0.025) keeps a correct rule from failing by chance (p < 0.3%, and the
        // seeds are fixed); aliasing or a rule blind to sample size alarms on most audits, far above it.
        var limit = Significance + (3 * Math.Sqrt(Significance * (1 - Significance) / audits));
        Assert.True(
            (double)alarms / audits <= limit,
            $"{alarms} of {audits} audits alarmed ({order} order, {sampleRows}×{chunks} rows): {string.Join("; ", alarmed.Distinct().Take(5))}");
    }

    [Fact]
    public void Evenly_spaced_rows_of_a_chunks_first_batch_alias_with_periodic_order()
    {
        // The sampler this replaces: 256 rows at i·8,192/256 of the first batch, i.e. every 32nd row, always one store.
        var data = Data.Value;
        var rows = data.Order("periodic", new Random(7));
        var sampled = new List<int>();
        for (var chunk = 0; chunk < 4; chunk++)
        {
            sampled.AddRange(Enumerable.Range(0, 256).Select(i => rows[(chunk * ChunkRows) + (i * BatchRows / 256)]));
        }

        Assert.Contains(data.Audit(sampled), c => c.StartsWith("store_effect:", StringComparison.Ordinal));
        Assert.DoesNotContain(data.Audit(Enumerable.Range(0, 4).SelectMany(c => ReservoirSample(rows, c * ChunkRows, 256, new Random(c))).ToList()), c => c.StartsWith("store_effect:", StringComparison.Ordinal));
    }

    /// <summary>One chunk's sample as the worker takes it: a reservoir fed batch by batch.</summary>
    private static IEnumerable<int> ReservoirSample(int[] rows, int chunkStart, int sampleRows, Random random)
    {
        var reservoir = new RowReservoir(sampleRows, new Random(random.Next()));
        var slots = new int[sampleRows];
        for (var start = 0; start < ChunkRows; start += BatchRows)
        {
            foreach (var (item, slot) in reservoir.Offer(BatchRows))
            {
                slots[slot] = rows[chunkStart + start + item];
            }
        }

        return slots[..reservoir.Count];
    }

    /// <summary>The reference rows (store = row mod 32) and their profile.</summary>
    private sealed class Reference
    {
        private static readonly string[] Segments = ["retail", "online", "partner", "phone"];

        private Reference(double[][] numbers, string[] segments, ColumnProfile[] profiles)
        {
            Numbers = numbers;
            SegmentOf = segments;
            Profiles = profiles;
        }

        /// <summary>store_effect, income, tenure, score.</summary>
        public double[][] Numbers { get; }

        public string[] SegmentOf { get; }

        public ColumnProfile[] Profiles { get; }

        public static Reference Create(int seed)
        {
            var random = new Random(seed);
            var numbers = Enumerable.Range(0, 4).Select(_ => new double[Rows]).ToArray();
            var segments = new string[Rows];
            for (var r = 0; r < Rows; r++)
            {
                var store = r % Stores;
                numbers[0][r] = (store * 0.25) + Normal(random); // shifts with the row's position mod 32
                numbers[1][r] = Math.Exp(10 + (0.5 * Normal(random)));
                numbers[2][r] = random.Next(0, 72); // integers: many ties
                segments[r] = Segments[random.NextDouble() switch { < 0.5 => 0, < 0.75 => 1, < 0.9 => 2, _ => 3 }];
                numbers[3][r] = 1 / (1 + Math.Exp(-((0.3 * numbers[0][r]) - (0.02 * numbers[2][r]) + (segments[r] == "online" ? 0.5 : 0))));
            }

            string[] names = ["store_effect", "income", "tenure", "score"];
            var profiles = new List<ColumnProfile>();
            for (var c = 0; c < names.Length; c++)
            {
                var builder = new ColumnProfileBuilder(names[c], ProfileColumnKind.Numeric);
                foreach (var value in numbers[c])
                {
                    builder.Add(value);
                }

                profiles.Add(builder.Build());
            }

            var segment = new ColumnProfileBuilder("segment", ProfileColumnKind.Categorical);
            foreach (var value in segments)
            {
                segment.Add(value);
            }

            profiles.Add(segment.Build());
            return new Reference(numbers, segments, [.. profiles]);
        }

        /// <summary>Row indices in file order: random, sorted by store_effect, or round-robin over the stores (as generated).</summary>
        public int[] Order(string order, Random random)
        {
            var rows = Enumerable.Range(0, Rows).ToArray();
            switch (order)
            {
                case "random":
                    random.Shuffle(rows);
                    break;
                case "sorted":
                    Array.Sort(Numbers[0].ToArray(), rows);
                    break;
            }

            return rows;
        }

        /// <summary>The auditor's verdict on these rows: the names of the columns that drifted.</summary>
        public List<string> Audit(IReadOnlyList<int> rows)
        {
            var thresholds = new DriftThresholds { PValue = Significance / Profiles.Length, MinimumSampleRows = 100 };
            var drifted = new List<string>();
            foreach (var profile in Profiles)
            {
                var accumulator = new ColumnDriftAccumulator(profile);
                var column = Array.IndexOf(["store_effect", "income", "tenure", "score"], profile.Name);
                foreach (var row in rows)
                {
                    if (column >= 0)
                    {
                        accumulator.Add(Numbers[column][row]);
                    }
                    else
                    {
                        accumulator.Add(SegmentOf[row]);
                    }
                }

                var result = accumulator.Compare(thresholds);
                if (result.Drifted)
                {
                    drifted.Add($"{result.Name}: {result.Reason}");
                }
            }

            return drifted;
        }

        private static double Normal(Random random) =>
            Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
    }
}
