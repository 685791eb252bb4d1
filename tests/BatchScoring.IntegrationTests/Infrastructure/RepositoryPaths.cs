namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>Finds files of the source tree from the test assembly's output directory.</summary>
public static class RepositoryPaths
{
    /// <summary>
    /// Walks up from <see cref="AppContext.BaseDirectory"/> and returns the first existing
    /// <paramref name="relativePath"/>, or null when no ancestor directory holds it.
    /// </summary>
    public static string? FindUpwards(string relativePath)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relativePath);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The repository's Directory.Packages.props (central package versions).</summary>
    public static string DirectoryPackagesProps =>
        FindUpwards("Directory.Packages.props")
        ?? throw new FileNotFoundException(
            $"Directory.Packages.props not found in any parent of {AppContext.BaseDirectory}");
}
