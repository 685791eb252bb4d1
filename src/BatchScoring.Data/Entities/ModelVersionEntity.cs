namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.model_versions</c>.</summary>
public sealed class ModelVersionEntity
{
    public string ModelName { get; set; } = "";

    public int Version { get; set; }

    /// <summary>Tenant that owns the model name (every version of a name has the same tenant).</summary>
    public string Tenant { get; set; } = Tenants.Default;

    /// <summary>Hex SHA-256 of the ONNX file (content address).</summary>
    public string Sha256 { get; set; } = "";

    public string StoragePath { get; set; } = "";

    /// <summary>Input/output signature as JSON text (column type jsonb).</summary>
    public string Signature { get; set; } = "{}";

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the version was archived (null: not archived); an archived version is kept but not served.</summary>
    public DateTimeOffset? ArchivedAt { get; set; }

    /// <summary>Who archived it (the API key's name).</summary>
    public string? ArchivedBy { get; set; }
}
