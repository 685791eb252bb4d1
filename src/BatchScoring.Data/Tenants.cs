using System.Text.RegularExpressions;

namespace BatchScoring.Data;

/// <summary>Tenant names: the owner of jobs and model names (<c>schemas/sql/007_tenants.sql</c>).</summary>
public static partial class Tenants
{
    /// <summary>Owner of everything written before tenants existed, of jobs submitted as messages, and of plain API keys.</summary>
    public const string Default = "default";

    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,62}$")]
    private static partial Regex NamePattern();
}

/// <summary>A model name is already used by another tenant; names are global, so this tenant must choose another.</summary>
public sealed class ModelNameTakenException(string modelName)
    : Exception($"Model name '{modelName}' is already in use; choose another name.")
{
    public string ModelName { get; } = modelName;
}
