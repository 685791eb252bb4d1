namespace BatchScoring.Data;

/// <summary>A row of <c>scoring.model_versions</c>.</summary>
public sealed class ModelVersionEntity
{
    public string ModelName { get; set; } = "";

    public int Version { get; set; }

    /// <summary>Hex SHA-256 of the ONNX file (content address).</summary>
    public string Sha256 { get; set; } = "";

    public string StoragePath { get; set; } = "";

    /// <summary>Input/output signature as JSON text (column type jsonb).</summary>
    public string Signature { get; set; } = "{}";

    public DateTimeOffset CreatedAt { get; set; }
}
