using System.Security.Cryptography;
using System.Text;
using BatchScoring.Data;
using Microsoft.Extensions.Options;

namespace BatchScoring.Api;

/// <summary>
/// API keys and request limits, section "BatchScoring:Api" (docs/http-api.md):
/// <code>
/// "Api": {
///   "Keys": ["full-key"],                 // scopes submit, read, admin; tenant "default"
///   "ReadOnlyKeys": ["dashboard-key"],    // scope read; tenant "default"
///   "Clients": [ { "Name": "team-a-ci", "Key": "sha256:9f86d0…", "Tenant": "team-a", "Scopes": ["submit", "read"] } ]
/// }
/// </code>
/// A key is the key itself or <c>sha256:</c> and the 64 hex digits of its SHA-256. With no key configured the API runs
/// in local-only mode: bound to loopback, every caller has every scope in tenant "default".
/// </summary>
public sealed class ApiKeyOptions
{
    public const string SectionName = "BatchScoring:Api";

    public const string HashPrefix = "sha256:";

    public List<string> Keys { get; set; } = [];

    public List<string> ReadOnlyKeys { get; set; } = [];

    public List<ApiClientOptions> Clients { get; set; } = [];

    /// <summary>Largest JSON request body, in bytes (default 1 MiB); larger ones get 413.</summary>
    public long MaxBodyBytes { get; set; } = 1 << 20;

    /// <summary>Largest model upload (<c>POST /api/models/{name}/versions</c>), in bytes (default 1 GiB).</summary>
    public long MaxModelBytes { get; set; } = 1L << 30;

    public bool LocalOnly => Keys.Count == 0 && ReadOnlyKeys.Count == 0 && Clients.Count == 0;

    /// <summary>Every configured key as a grant: its SHA-256, tenant and scopes.</summary>
    public IReadOnlyList<ApiKeyGrant> Grants() =>
    [
        .. Keys.Select((k, i) => new ApiKeyGrant($"Keys[{i}]", HashOf(k), Tenants.Default, ApiScopes.All)),
        .. ReadOnlyKeys.Select((k, i) => new ApiKeyGrant($"ReadOnlyKeys[{i}]", HashOf(k), Tenants.Default, [ApiScopes.Read])),
        .. Clients.Select((c, i) => new ApiKeyGrant(
            string.IsNullOrWhiteSpace(c.Name) ? $"Clients[{i}]" : c.Name, HashOf(c.Key), c.Tenant ?? Tenants.Default, c.ParsedScopes())),
    ];

    /// <summary>The SHA-256 a configured key stands for: the hex after <c>sha256:</c>, or the hash of the plain key.</summary>
    public static byte[] HashOf(string? configured)
    {
        var value = configured?.Trim() ?? "";
        return value.StartsWith(HashPrefix, StringComparison.OrdinalIgnoreCase)
            ? Convert.FromHexString(value[HashPrefix.Length..])
            : SHA256.HashData(Encoding.UTF8.GetBytes(value));
    }

    public static bool IsValidConfiguredKey(string? configured)
    {
        var value = configured?.Trim() ?? "";
        if (!value.StartsWith(HashPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return value.Length > 0;
        }

        var hex = value[HashPrefix.Length..];
        return hex.Length == 64 && hex.All(char.IsAsciiHexDigit);
    }
}

/// <summary>One API key with its tenant and scopes.</summary>
public sealed class ApiClientOptions
{
    /// <summary>Shown in logs (never the key).</summary>
    public string? Name { get; set; }

    /// <summary>The key, or <c>sha256:</c> and the hex SHA-256 of the key.</summary>
    public string? Key { get; set; }

    /// <summary>Default "default".</summary>
    public string? Tenant { get; set; }

    /// <summary><c>submit</c>, <c>read</c>, <c>admin</c>; an entry may list several, separated by commas or spaces.</summary>
    public List<string> Scopes { get; set; } = [];

    public IReadOnlyList<string> ParsedScopes() =>
        Scopes.SelectMany(s => s.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(s => s.ToLowerInvariant()).Distinct().ToArray();
}

/// <summary>A configured key, resolved: what the key check compares and what the caller may do.</summary>
public sealed record ApiKeyGrant(string Name, byte[] Sha256, string Tenant, IReadOnlyList<string> Scopes);

/// <summary>Refuses a configuration that would lock callers out silently or make a key weak.</summary>
internal sealed class ApiKeyOptionsValidator : IValidateOptions<ApiKeyOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiKeyOptions options)
    {
        var problems = new List<string>();
        void CheckKey(string? key, string where)
        {
            if (!ApiKeyOptions.IsValidConfiguredKey(key))
            {
                problems.Add($"{SectionNamed(where)}: a key must not be empty; give the key, or '{ApiKeyOptions.HashPrefix}' and 64 hex digits.");
            }
        }

        for (var i = 0; i < options.Keys.Count; i++)
        {
            CheckKey(options.Keys[i], $"Keys:{i}");
        }

        for (var i = 0; i < options.ReadOnlyKeys.Count; i++)
        {
            CheckKey(options.ReadOnlyKeys[i], $"ReadOnlyKeys:{i}");
        }

        for (var i = 0; i < options.Clients.Count; i++)
        {
            var client = options.Clients[i];
            CheckKey(client.Key, $"Clients:{i}:Key");
            if (client.Tenant is not null && !Tenants.IsValidName(client.Tenant))
            {
                problems.Add($"{SectionNamed($"Clients:{i}:Tenant")}: '{client.Tenant}' is not a tenant name (1-63 lower-case letters, digits, '_' or '-', starting with a letter).");
            }

            var scopes = client.ParsedScopes();
            if (scopes.Count == 0 || scopes.Any(s => !ApiScopes.All.Contains(s)))
            {
                problems.Add($"{SectionNamed($"Clients:{i}:Scopes")}: give one or more of {string.Join(", ", ApiScopes.All)} (was '{string.Join(",", scopes)}').");
            }
        }

        if (problems.Count == 0)
        {
            var hashes = options.Grants().Select(g => Convert.ToHexString(g.Sha256)).ToArray();
            if (hashes.Distinct().Count() != hashes.Length)
            {
                problems.Add($"{ApiKeyOptions.SectionName}: the same key is configured twice; each key must have one tenant and one set of scopes.");
            }

            if (options.MaxBodyBytes < 1024 || options.MaxModelBytes < 1024)
            {
                problems.Add($"{ApiKeyOptions.SectionName}: MaxBodyBytes and MaxModelBytes must be at least 1024.");
            }
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    private static string SectionNamed(string key) => $"{ApiKeyOptions.SectionName}:{key}";
}
