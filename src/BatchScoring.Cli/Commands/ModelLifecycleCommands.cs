using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary><c>models archive|unarchive|delete</c>, and what <c>models alias|rollback|list</c> share (docs/model-registry.md).</summary>
internal static class ModelLifecycleCommands
{
    public static Option<bool> ForceOption() => new("--force")
    {
        Description = "Move even when the version's signature is incompatible with the current target's; recorded in the alias history.",
    };

    public static Command Archive() => VersionCommand(
        "archive",
        "Archive a version: kept for lineage (history, old jobs), refused at submit and as an alias target; refused while an alias points at it.",
        (api, name, version, ct) => api.PostJsonAsync<ModelVersionInfo>(VersionPath(name, version) + "/archive", new { }, ct, idempotent: true),
        info => $"archived {info.Name}@{info.Version}");

    public static Command Unarchive() => VersionCommand(
        "unarchive",
        "Make an archived version usable again.",
        (api, name, version, ct) => api.PostJsonAsync<ModelVersionInfo>(VersionPath(name, version) + "/unarchive", new { }, ct, idempotent: true),
        info => $"unarchived {info.Name}@{info.Version}");

    public static Command Delete() => VersionCommand(
        "delete",
        "Delete a version, and its stored file when no other version has the same bytes; refused while an alias, a queued or running job or a schedule uses it.",
        (api, name, version, ct) => api.SendAsync<ModelVersionDeleted>(() => new HttpRequestMessage(HttpMethod.Delete, VersionPath(name, version)), idempotent: false, ct),
        deleted => $"deleted {deleted.Name}@{deleted.Version}; file {(deleted.FileRemoved ? "removed" : "kept (another version has the same bytes)")}");

    /// <summary>
    /// Runs an alias move; when the API refuses it with a signature diff and <paramref name="json"/> is set, prints
    /// <c>{"error", "fromVersion", "toVersion", "diff"}</c> on stdout before the one-line error goes to stderr (exit 1).
    /// </summary>
    public static async Task<ModelVersionInfo> MoveAsync(bool json, Func<Task<ModelVersionInfo>> move)
    {
        try
        {
            return await move();
        }
        catch (CliException ex) when (json && ex.Problem is { } problem && JsonNode.Parse(problem) is JsonObject body && body["diff"] is { } diff)
        {
            var refused = new JsonObject
            {
                ["error"] = ex.Message,
                ["fromVersion"] = body["fromVersion"]?.DeepClone(),
                ["toVersion"] = body["toVersion"]?.DeepClone(),
                ["diff"] = diff.DeepClone(),
            };
            Console.WriteLine(refused.ToJsonString(ApiClient.Json));
            throw;
        }
    }

    public static void PrintMove(string alias, ModelVersionInfo info, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(info, ApiClient.Json));
        }
        else
        {
            Console.Error.WriteLine($"{alias} → {info.Name} v{info.Version}");
        }
    }

    /// <summary>One line of <c>models list</c>: name, version, hash, aliases, archived, inputs → outputs, feature names.</summary>
    public static string Row(ModelVersionInfo m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var aliases = m.ArchivedAt is null ? string.Join(",", m.Aliases) : "(archived)";
        var inputs = string.Join("; ", m.Signature.Inputs.Select(i => i.Display));
        var outputs = string.Join("; ", m.Signature.Outputs.Select(o => o.Display));
        var features = m.Signature.FeatureNames is { } names ? $"  features [{string.Join(", ", names)}]" : "";
        return $"{m.Name,-24} v{m.Version,-4} {m.Sha256[..Math.Min(12, m.Sha256.Length)]}  {aliases,-20} {inputs} → {outputs}{features}";
    }

    private static string VersionPath(string name, int version) => $"api/models/{Uri.EscapeDataString(name)}/versions/{version}";

    private static Command VersionCommand<T>(
        string verb, string description, Func<ApiClient, string, int, CancellationToken, Task<T>> call, Func<T, string> describe)
    {
        var name = CliOptions.ModelName();
        var version = new Option<int>("--version") { Description = "Version number.", Required = true };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var command = new Command(verb, description) { name, version, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var result = await call(api, parse.GetRequiredValue(name), parse.GetValue(version), ct);
            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(result, ApiClient.Json) : describe(result));
            return ExitCodes.Succeeded;
        });
        return command;
    }
}
