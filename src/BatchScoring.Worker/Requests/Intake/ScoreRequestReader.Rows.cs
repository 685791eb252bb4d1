using System.Text.Json;
using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>Rows and their features (see <see cref="FeatureValues"/>): the part of a request that grows with its size.</summary>
public static partial class ScoreRequestReader
{
    private const int MaxRememberedFeatureNames = 1024;

    private static readonly object BoxedTrue = true;
    private static readonly object BoxedFalse = false;

    [ThreadStatic]
    private static string[]? t_featureNames;

    [ThreadStatic]
    private static FeatureValues.Builder? t_featureBuilder;

    private static List<ScoreRequestRow> ReadRows(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw Schema("rows", "an array of {key, features} objects", reader.TokenType);
        }

        var rows = new List<ScoreRequestRow>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var at = rows.Count;
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw Schema($"rows[{at}]", "an object with key and features", reader.TokenType);
            }

            string? key = null;
            IReadOnlyDictionary<string, object?>? features = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                reader.Read();
                if (name.Equals("key", StringComparison.OrdinalIgnoreCase))
                {
                    key = StringOrInteger(ref reader, $"rows[{at}].key");
                }
                else if (name.Equals("features", StringComparison.OrdinalIgnoreCase))
                {
                    features = ReadFeatures(ref reader, at);
                }
                else
                {
                    reader.Skip();
                }
            }

            if (key is null)
            {
                throw new SchemaException($"rows[{at}].key is required.");
            }

            if (features is null)
            {
                throw new SchemaException($"rows[{at}].features is required.");
            }

            rows.Add(new ScoreRequestRow { Key = key, Features = features });
        }

        return rows;
    }

    private static IReadOnlyDictionary<string, object?> ReadFeatures(ref Utf8JsonReader reader, int row)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Schema($"rows[{row}].features", "an object of feature name → value", reader.TokenType);
        }

        // Producers send the same features in the same order: the previous row's name strings, and its name array
        // when all match, are reused; numbers are kept unboxed (see FeatureValues).
        var builder = t_featureBuilder ??= new FeatureValues.Builder();
        builder.Clear();
        var previous = t_featureNames ?? [];
        var sameNames = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var index = builder.Count;
            string name;
            if (index < previous.Length && !reader.ValueIsEscaped && reader.ValueTextEquals(previous[index]))
            {
                name = previous[index];
            }
            else
            {
                name = reader.GetString()!;
                sameNames = false;
            }

            reader.Read();
            switch (reader.TokenType)
            {
                case JsonTokenType.Number when reader.TryGetInt64(out var integer):
                    builder.AddInteger(name, integer);
                    break;
                case JsonTokenType.Number when reader.TryGetDouble(out var real):
                    builder.AddReal(name, real);
                    break;
                case JsonTokenType.Number:
                    throw new SchemaException($"rows[{row}].features.{Trim(name)} is a number outside the range of a double.");
                case JsonTokenType.String:
                    builder.AddOther(name, reader.GetString());
                    break;
                case JsonTokenType.True:
                    builder.AddOther(name, BoxedTrue);
                    break;
                case JsonTokenType.False:
                    builder.AddOther(name, BoxedFalse);
                    break;
                case JsonTokenType.Null:
                    builder.AddOther(name, null);
                    break;
                case JsonTokenType.StartArray:
                    builder.AddOther(name, ReadArray(ref reader));
                    break;
                default:
                    builder.AddOther(name, JsonElement.ParseValue(ref reader));
                    break;
            }
        }

        string[] names;
        if (sameNames && builder.Count == previous.Length)
        {
            names = previous;
        }
        else
        {
            names = [.. builder.Names];
            if (names.Length <= MaxRememberedFeatureNames)
            {
                t_featureNames = names;
            }
        }

        return (IReadOnlyDictionary<string, object?>?)builder.Build(names) ?? builder.ToDictionary();
    }

    /// <summary>An array of numbers becomes double[]; any other array stays a JSON element (the feature check reports it).</summary>
    private static object ReadArray(ref Utf8JsonReader reader)
    {
        var copy = reader;
        var values = new List<double>();
        while (copy.Read() && copy.TokenType == JsonTokenType.Number && copy.TryGetDouble(out var value))
        {
            values.Add(value);
        }

        if (copy.TokenType == JsonTokenType.EndArray)
        {
            reader = copy;
            return values.ToArray();
        }

        return JsonElement.ParseValue(ref reader);
    }
}
