using System.Text.Json;
using BatchScoring.IntegrationTests.Infrastructure;
using Json.Schema;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary>
/// Validates documents against the checked-in schemas/ (draft 2020-12, formats asserted), picked by file name, so a
/// schema change needs no test change. Every schema is built into one registry: cross-file <c>$ref</c>s resolve by <c>$id</c>.
/// </summary>
public static class SchemaAssert
{
    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(Load);

    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };

    public static string Directory =>
        Path.GetDirectoryName(RepositoryPaths.FindUpwards(Path.Combine("schemas", "README.md"))
            ?? throw new FileNotFoundException($"schemas/README.md not found above {AppContext.BaseDirectory}"))!;

    /// <summary>Every schema file name (e.g. <c>job-status.schema.json</c>).</summary>
    public static IReadOnlyCollection<string> Files => Schemas.Value.Keys;

    /// <summary>Fails with every violation (JSON path of the instance and schema location) when <paramref name="json"/> does not validate.</summary>
    public static void Valid(string schemaFile, string json, string? what = null)
    {
        using var document = JsonDocument.Parse(json);
        Valid(schemaFile, document.RootElement, what);
    }

    public static void Valid(string schemaFile, JsonElement instance, string? what = null)
    {
        var errors = Violations(schemaFile, instance);
        Assert.True(errors.Count == 0, $"{what ?? "document"} does not match schemas/{schemaFile}:\n  {string.Join("\n  ", errors)}\n{instance.GetRawText()}");
    }

    /// <summary>Each item of a JSON array against the schema (list endpoints answer arrays of one contract); the array must not be empty.</summary>
    public static void EachValid(string schemaFile, string json, string? what = null)
    {
        using var document = JsonDocument.Parse(json);
        Assert.True(document.RootElement.ValueKind == JsonValueKind.Array && document.RootElement.GetArrayLength() > 0, $"{what ?? "document"} is not a non-empty array: {json}");
        foreach (var item in document.RootElement.EnumerateArray())
        {
            Valid(schemaFile, item, what);
        }
    }

    /// <summary>A MassTransit envelope (masstransit-envelope.schema.json) whose <c>message</c> matches <paramref name="schemaFile"/>.</summary>
    public static void ValidEnvelope(string schemaFile, JsonElement envelope, string? what = null)
    {
        Valid("masstransit-envelope.schema.json", envelope, what);
        Valid(schemaFile, envelope.GetProperty("message"), what);
    }

    /// <summary>The violations, empty when <paramref name="instance"/> is valid (for tests that expect a refusal).</summary>
    public static IReadOnlyList<string> Violations(string schemaFile, JsonElement instance)
    {
        Assert.True(Schemas.Value.TryGetValue(schemaFile, out var schema), $"no schemas/{schemaFile}");
        var result = schema.Evaluate(instance, Options);
        if (result.IsValid)
        {
            return [];
        }

        return (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}, {e.Key}): {e.Value}"))
            .DefaultIfEmpty("invalid (no details)")
            .ToList();
    }

    private static Dictionary<string, JsonSchema> Load()
    {
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var schemas = new Dictionary<string, JsonSchema>();
        var pending = System.IO.Directory.GetFiles(Directory, "*.schema.json").Order(StringComparer.Ordinal).ToList();

        // A $ref to another file resolves against the schemas already registered: build those first, in passes.
        while (pending.Count > 0)
        {
            var failures = new List<string>();
            var before = pending.Count;
            foreach (var file in pending.ToList())
            {
                try
                {
                    schemas[Path.GetFileName(file)] = JsonSchema.FromText(File.ReadAllText(file), options);
                    pending.Remove(file);
                }
                catch (Exception ex) when (ex is JsonSchemaException or RefResolutionException or JsonException)
                {
                    failures.Add($"{Path.GetFileName(file)}: {ex.Message}");
                }
            }

            if (failures.Count > 0 && pending.Count == before)
            {
                Assert.Fail("schemas/ cannot be built:\n" + string.Join("\n", failures));
            }
        }

        return schemas;
    }
}
