namespace BatchScoring.Scoring.Onnx;

/// <summary>The model file could not be read, is not a valid ONNX model, or failed its checksum.</summary>
public class ModelLoadException : Exception
{
    public ModelLoadException()
    {
    }

    public ModelLoadException(string message)
        : base(message)
    {
    }

    public ModelLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A stored model file whose SHA-256 is not the one recorded when it was registered: it was changed or replaced on
/// disk. Not transient: retrying reads the same bytes.
/// </summary>
public sealed class ModelIntegrityException : ModelLoadException
{
    public ModelIntegrityException()
    {
    }

    public ModelIntegrityException(string message)
        : base(message)
    {
    }

    public ModelIntegrityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The data's columns cannot feed the model's inputs (missing column, wrong type, wrong count).</summary>
public sealed class InputMappingException : Exception
{
    public InputMappingException()
    {
    }

    public InputMappingException(string message)
        : base(message)
    {
    }

    public InputMappingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
