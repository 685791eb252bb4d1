namespace BatchScoring.Scoring.Data;

/// <summary>Opens an input file for reading; every failure is a <see cref="DatasetException"/> that names the file, never its contents.</summary>
internal static class InputFile
{
    public static FileStream Open(string path, bool useAsync)
    {
        if (Directory.Exists(path) || !File.Exists(path))
        {
            throw new DatasetException($"Input file '{path}' does not exist.");
        }

        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new DatasetException($"Input file '{path}' cannot be read: permission denied.", ex);
        }
        catch (FileNotFoundException ex)
        {
            throw new DatasetException($"Input file '{path}' does not exist.", ex);
        }
        catch (IOException ex)
        {
            throw new DatasetException($"Input file '{path}' cannot be opened ({ex.GetType().Name}).", ex);
        }
    }
}
