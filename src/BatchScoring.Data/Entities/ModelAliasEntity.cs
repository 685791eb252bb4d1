namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.model_aliases</c>: alias (e.g. <c>production</c>) → version.</summary>
public sealed class ModelAliasEntity
{
    public string ModelName { get; set; } = "";

    public string Alias { get; set; } = "";

    public int Version { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}
