using System.Globalization;

namespace BatchScoring.Scoring.Drift;

/// <summary>
/// Collects the current window of one column against its reference <see cref="ColumnProfile"/> in bounded memory:
/// every value is counted into the profile's bins (for PSI and chi-square), and a seeded reservoir of at most
/// <c>sampleSize</c> numeric values feeds the KS test.
/// </summary>
public sealed class ColumnDriftAccumulator
{
    private readonly ColumnProfile _profile;
    private readonly long[] _counts;
    private readonly Reservoir? _sample;
    private readonly Dictionary<string, int>? _categoryBins;

    public ColumnDriftAccumulator(ColumnProfile profile, int sampleSize = 20_000, int seed = 17)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleSize, 1);
        Validate(profile);
        _profile = profile;
        _counts = new long[profile.Proportions.Length];
        if (profile.Kind == ProfileColumnKind.Numeric)
        {
            _sample = new Reservoir(sampleSize, seed);
        }
        else
        {
            // Same mapping as ColumnProfile.BinOf(string), without a linear scan per value.
            _categoryBins = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < profile.Categories.Length; i++)
            {
                _categoryBins.TryAdd(profile.Categories[i], i);
            }
        }
    }

    public ProfileColumnKind Kind => _profile.Kind;

    /// <summary>Non-missing values added so far.</summary>
    public long Rows { get; private set; }

    public long Missing { get; private set; }

    /// <summary>Adds a number; NaN is missing. On a categorical column the number is a category code (its invariant text).</summary>
    public void Add(double value)
    {
        if (double.IsNaN(value))
        {
            Missing++;
            return;
        }

        if (_sample is null)
        {
            Add(ColumnProfile.CategoryText(value));
            return;
        }

        Rows++;
        _sample.Add(value);
        if (_counts.Length > 0)
        {
            _counts[_profile.BinOf(value)]++;
        }
    }

    /// <summary>Adds a category; null or empty is missing. Numeric columns take numbers only.</summary>
    public void Add(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            Missing++;
            return;
        }

        if (_categoryBins is null)
        {
            throw new InvalidOperationException($"Column '{_profile.Name}' is numeric; add numbers, not text.");
        }

        Rows++;
        if (_counts.Length > 0)
        {
            _counts[_categoryBins.TryGetValue(value, out var bin) ? bin : _profile.Categories.Length]++;
        }
    }

    public void AddMissing() => Missing++;

    /// <summary>
    /// Compares the values added so far with the reference and applies the rule of <see cref="DriftThresholds"/>.
    /// Statistics are reported even for a window too small to judge; the accumulator can keep taking values.
    /// </summary>
    public ColumnDrift Compare(DriftThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        var name = _profile.Name;
        var kind = _profile.Kind;
        if (_counts.Length == 0)
        {
            return new ColumnDrift(name, kind, Rows, Missing, 0, null, null, null, null, false, "reference profile has no values");
        }

        if (Rows == 0)
        {
            // Nothing to compute; with MinimumSampleRows of 0 the window is still not judged.
            var reason = thresholds.MinimumSampleRows > 0 ? TooFewRows(thresholds) : "no current values";
            return new ColumnDrift(name, kind, Rows, Missing, 0, null, null, null, null, false, reason);
        }

        var actual = ColumnProfileBuilder.Shares(_counts, Rows);
        var histogram = new DriftHistogram(DriftHistogram.BinNames(_profile), _profile.Proportions, actual);
        var psi = DriftStatistics.PopulationStabilityIndex(_profile.Proportions, actual);
        double? ksStatistic = null, ksPValue = null;
        if (_sample is not null)
        {
            (ksStatistic, ksPValue) = DriftStatistics.KolmogorovSmirnov(_profile.Quantiles, _profile.Count, _sample.Values);
        }

        // Over the same bins as PSI (categories, or the reference deciles): the significance test of the PSI rule.
        var (chiSquare, _, chiSquarePValue) = DriftStatistics.ChiSquare(_counts, _profile.Proportions);

        if (Rows < thresholds.MinimumSampleRows)
        {
            return new ColumnDrift(name, kind, Rows, Missing, psi, ksStatistic, ksPValue, chiSquare, chiSquarePValue, false, TooFewRows(thresholds), histogram, thresholds);
        }

        string? verdict = null;
        if (psi >= thresholds.Psi && chiSquarePValue < thresholds.PValue)
        {
            verdict = Text($"PSI {psi:0.###} ≥ {thresholds.Psi} with chi-square p {chiSquarePValue:G3} < {thresholds.PValue:G3}");
        }
        else if (ksPValue < thresholds.PValue && ksStatistic >= thresholds.KsStatistic)
        {
            verdict = Text($"KS D {ksStatistic:0.###} ≥ {thresholds.KsStatistic} with p {ksPValue:G3} < {thresholds.PValue:G3}");
        }
        else if (_sample is null && chiSquarePValue < thresholds.PValue && psi >= thresholds.Psi / 2)
        {
            verdict = Text($"chi-square p {chiSquarePValue:G3} < {thresholds.PValue:G3} with PSI {psi:0.###} ≥ {thresholds.Psi / 2}");
        }

        return new ColumnDrift(name, kind, Rows, Missing, psi, ksStatistic, ksPValue, chiSquare, chiSquarePValue, verdict is not null, verdict, histogram, thresholds);
    }

    private string TooFewRows(DriftThresholds thresholds) => Text($"too few rows: {Rows} < {thresholds.MinimumSampleRows}");

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Profiles may come from storage: a malformed one should fail here, not as an index error mid-window.</summary>
    private static void Validate(ColumnProfile profile)
    {
        var bins = profile.Proportions.Length;
        if (bins == 0)
        {
            return;
        }

        var consistent = profile.Kind switch
        {
            ProfileColumnKind.Numeric => bins == profile.Edges.Length + 1 && profile.Quantiles.Length >= 2 && profile.Count > 0,
            ProfileColumnKind.Categorical => bins == profile.Categories.Length + 1 && profile.Count > 0,
            _ => false,
        };
        if (!consistent)
        {
            throw new ArgumentException(
                $"Profile of column '{profile.Name}' is inconsistent: {bins} proportions for {profile.Edges.Length} edges, "
                + $"{profile.Categories.Length} categories, {profile.Quantiles.Length} quantiles and {profile.Count} values.",
                nameof(profile));
        }
    }
}
