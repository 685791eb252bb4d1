namespace BatchScoring.Api;

/// <summary>
/// API keys, section "BatchScoring:Api":
/// <code>"Api": { "Keys": ["write-key"], "ReadOnlyKeys": ["dashboard-key"] }</code>
/// With no key configured the API runs in local-only mode: bound to loopback, no key asked.
/// </summary>
public sealed class ApiKeyOptions
{
    public const string SectionName = "BatchScoring:Api";

    public List<string> Keys { get; set; } = [];

    public List<string> ReadOnlyKeys { get; set; } = [];

    public bool LocalOnly => Keys.Count == 0 && ReadOnlyKeys.Count == 0;
}
