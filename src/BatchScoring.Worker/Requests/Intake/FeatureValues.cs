using System.Collections;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// One row's features as <see cref="ScoreRequestReader"/> parsed them: the names (one array shared by consecutive rows
/// with the same names), numbers unboxed, anything else as an object. As a dictionary it reads like the one it
/// replaces (integers come back as <see cref="long"/>, other numbers as <see cref="double"/>); the float lane reads
/// numbers by position without boxing. A dictionary with a boxed double per feature was about 1 KiB per single-row
/// request, the largest share of request mode's allocations after the message bodies.
/// </summary>
public sealed class FeatureValues : IReadOnlyDictionary<string, object?>
{
    private const byte RealNumber = 0;
    private const byte IntegerNumber = 1;
    private const byte OtherValue = 2;

    // Rows this wide are looked up through a name index instead of a scan.
    private const int IndexedWidth = 32;

    private readonly string[] _names;
    private readonly double[] _numbers;
    private readonly byte[] _kinds;
    private readonly object?[]? _others;
    private Dictionary<string, int>? _index;

    private FeatureValues(string[] names, double[] numbers, byte[] kinds, object?[]? others)
    {
        _names = names;
        _numbers = numbers;
        _kinds = kinds;
        _others = others;
    }

    public int Count => _names.Length;

    /// <summary>The names in the order they were sent (shared, not to be changed).</summary>
    public IReadOnlyList<string> Names => _names;

    public IEnumerable<string> Keys => _names;

    public IEnumerable<object?> Values => Enumerable.Range(0, _names.Length).Select(ValueAt);

    public object? this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"No feature '{key}'.");

    /// <summary>Position of a feature, trying <paramref name="hint"/> first (producers send features in the model's order); -1 when absent.</summary>
    public int IndexOf(string name, int hint = -1)
    {
        if ((uint)hint < (uint)_names.Length && string.Equals(_names[hint], name, StringComparison.Ordinal))
        {
            return hint;
        }

        if (_names.Length > IndexedWidth)
        {
            _index ??= BuildIndex(_names);
            return _index.TryGetValue(name, out var at) ? at : -1;
        }

        for (var i = 0; i < _names.Length; i++)
        {
            if (string.Equals(_names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The value at a position when it is a JSON number (integer or not).</summary>
    public bool TryGetNumber(int index, out double number)
    {
        number = _numbers[index];
        return _kinds[index] != OtherValue;
    }

    public object? ValueAt(int index) => Value(_kinds[index], _numbers[index], _others?[index]);

    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    public bool TryGetValue(string key, out object? value)
    {
        var at = IndexOf(key);
        value = at >= 0 ? ValueAt(at) : null;
        return at >= 0;
    }

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < _names.Length; i++)
        {
            yield return new KeyValuePair<string, object?>(_names[i], ValueAt(i));
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static object? Value(byte kind, double number, object? other) => kind switch
    {
        RealNumber => number,
        IntegerNumber => (long)number,
        _ => other,
    };

    private static Dictionary<string, int> BuildIndex(string[] names)
    {
        var index = new Dictionary<string, int>(names.Length, StringComparer.Ordinal);
        for (var i = 0; i < names.Length; i++)
        {
            index[names[i]] = i;
        }

        return index;
    }

    /// <summary>
    /// Collects one row's values while it is read (one instance per thread, reused), then builds the row. Names are
    /// passed in by the reader, which reuses the previous row's strings and array when they match.
    /// </summary>
    internal sealed class Builder
    {
        // Integers beyond this are not exact in a double: they are kept boxed.
        private const long MaxExactInteger = 1L << 53;

        private readonly List<string> _names = [];
        private double[] _numbers = new double[16];
        private byte[] _kinds = new byte[16];
        private object?[] _others = new object?[16];
        private bool _hasOthers;

        // The last name array checked for repeats: rows that share it skip the check.
        private string[]? _lastUniqueNames;

        public int Count => _names.Count;

        public IReadOnlyList<string> Names => _names;

        public void Clear()
        {
            if (_hasOthers)
            {
                Array.Clear(_others, 0, _names.Count);
            }

            _names.Clear();
            _hasOthers = false;
        }

        public void AddReal(string name, double value) => Add(name, value, RealNumber, null);

        public void AddInteger(string name, long value)
        {
            if (value is > -MaxExactInteger and < MaxExactInteger)
            {
                Add(name, value, IntegerNumber, null);
            }
            else
            {
                AddOther(name, value);
            }
        }

        public void AddOther(string name, object? value)
        {
            _hasOthers = true;
            Add(name, 0, OtherValue, value);
        }

        /// <summary>
        /// The row, with <paramref name="names"/> as its name array (the same names in the same order as added); null
        /// when a name repeats, in which case the caller keeps the last value of each (as a JSON object reader would).
        /// </summary>
        public FeatureValues? Build(string[] names)
        {
            var count = _names.Count;
            if (!ReferenceEquals(names, _lastUniqueNames) && HasRepeats(names))
            {
                return null;
            }

            _lastUniqueNames = names;
            object?[]? others = null;
            if (_hasOthers)
            {
                others = new object?[count];
                Array.Copy(_others, others, count);
            }

            return new FeatureValues(names, _numbers.AsSpan(0, count).ToArray(), _kinds.AsSpan(0, count).ToArray(), others);
        }

        /// <summary>The values as a plain dictionary (last value wins for a repeated name).</summary>
        public Dictionary<string, object?> ToDictionary()
        {
            var dictionary = new Dictionary<string, object?>(_names.Count, StringComparer.Ordinal);
            for (var i = 0; i < _names.Count; i++)
            {
                dictionary[_names[i]] = Value(_kinds[i], _numbers[i], _others[i]);
            }

            return dictionary;
        }

        private static bool HasRepeats(string[] names)
        {
            if (names.Length < 2)
            {
                return false;
            }

            var seen = new HashSet<string>(names.Length, StringComparer.Ordinal);
            foreach (var name in names)
            {
                if (!seen.Add(name))
                {
                    return true;
                }
            }

            return false;
        }

        private void Add(string name, double number, byte kind, object? other)
        {
            var at = _names.Count;
            if (at == _numbers.Length)
            {
                Array.Resize(ref _numbers, at * 2);
                Array.Resize(ref _kinds, at * 2);
                Array.Resize(ref _others, at * 2);
            }

            _names.Add(name);
            _numbers[at] = number;
            _kinds[at] = kind;
            _others[at] = other;
        }
    }
}
