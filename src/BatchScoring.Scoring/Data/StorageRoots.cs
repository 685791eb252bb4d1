namespace BatchScoring.Scoring.Data;

/// <summary>
/// The directories that input, output and model paths must stay inside (<c>BatchScoring:Storage:AllowedRoots</c>).
/// A path is judged by its real location: <c>..</c> and symbolic links are resolved the way the kernel resolves them,
/// component by component, and a path that does not exist yet (an output directory) by its nearest existing parent.
/// With no roots configured every path is allowed (and the service warns at start-up).
/// </summary>
public sealed class StorageRoots
{
    /// <summary>The configuration key, as users write it.</summary>
    public const string SettingName = "BatchScoring:Storage:AllowedRoots";

    private const int MaxLinkHops = 40;

    private static readonly StringComparison PathComparison =
        OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    private readonly string[] _roots;

    public StorageRoots(IEnumerable<string>? roots)
    {
        _roots = (roots ?? []).Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => Path.GetFullPath(r.Trim())).Distinct().ToArray();
    }

    public static StorageRoots Unconfined { get; } = new([]);

    /// <summary>False when no root is configured: every path is allowed.</summary>
    public bool IsConfined => _roots.Length > 0;

    public IReadOnlyList<string> Roots => _roots;

    /// <summary>
    /// The path to use from now on: its real, absolute location when roots are configured (so that what was checked is
    /// what gets opened), else its absolute form.
    /// </summary>
    /// <param name="what">What the path is for, as the user named it (e.g. "Input", "OutputParquet").</param>
    /// <exception cref="PathNotAllowedException">The path is empty, malformed or resolves outside every root.</exception>
    public string Confine(string path, string what)
    {
        if (string.IsNullOrWhiteSpace(path) || path.Contains('\0', StringComparison.Ordinal))
        {
            throw new PathNotAllowedException($"{what}: '{Printable(path)}' is not a valid path.");
        }

        string absolute;
        try
        {
            absolute = Path.IsPathRooted(path) ? path : Path.Combine(Environment.CurrentDirectory, path);
            if (!IsConfined)
            {
                return Path.GetFullPath(absolute);
            }
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new PathNotAllowedException($"{what}: '{Printable(path)}' is not a valid path.", ex);
        }

        var real = RealPath(absolute, what, path);
        if (_roots.Any(root => IsInside(real, RealPath(root, what, path))))
        {
            return real;
        }

        var resolvedNote = string.Equals(real, Path.GetFullPath(absolute), PathComparison) ? string.Empty : $" (it resolves to '{real}')";
        throw new PathNotAllowedException(
            $"{what}: '{Printable(path)}'{resolvedNote} is outside the allowed storage roots; allowed: {string.Join(", ", _roots.Select(r => $"'{r}'"))} (setting {SettingName}).");
    }

    /// <summary>True when <paramref name="path"/> (already real and absolute) is <paramref name="root"/> or below it.</summary>
    private static bool IsInside(string path, string root)
    {
        var trimmedRoot = Path.TrimEndingDirectorySeparator(root);
        if (string.Equals(Path.TrimEndingDirectorySeparator(path), trimmedRoot, PathComparison))
        {
            return true;
        }

        return path.StartsWith(trimmedRoot + Path.DirectorySeparatorChar, PathComparison)
            || (trimmedRoot.Length > 0 && trimmedRoot[^1] == Path.DirectorySeparatorChar && path.StartsWith(trimmedRoot, PathComparison));
    }

    /// <summary>
    /// Resolves every symbolic link and <c>..</c> in order, as open(2) would: "a/link/../b" goes to the link target's
    /// parent, not to "a/b". Components that do not exist are taken as written.
    /// </summary>
    private static string RealPath(string absolute, string what, string original)
    {
        var root = Path.GetPathRoot(absolute)!;
        var pending = new List<string>(Split(absolute[root.Length..]));
        pending.Reverse();
        var current = root;
        var hops = 0;
        while (pending.Count > 0)
        {
            var part = pending[^1];
            pending.RemoveAt(pending.Count - 1);
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                current = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(current)) ?? current;
                continue;
            }

            var next = Path.Combine(current, part);
            string? target;
            try
            {
                target = new FileInfo(next).LinkTarget;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Unreadable component: take it as written; opening it will fail on its own.
                target = null;
            }

            if (target is null)
            {
                current = next;
                continue;
            }

            if (++hops > MaxLinkHops)
            {
                throw new PathNotAllowedException($"{what}: '{Printable(original)}' has too many levels of symbolic links.");
            }

            var targetParts = new List<string>(Split(Path.IsPathRooted(target) ? target[Path.GetPathRoot(target)!.Length..] : target));
            if (Path.IsPathRooted(target))
            {
                current = Path.GetPathRoot(target)!;
            }

            targetParts.Reverse();
            pending.AddRange(targetParts);
        }

        return current;
    }

    private static string[] Split(string relative) =>
        relative.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.None);

    /// <summary>A path as the user sent it, without control characters and cut to a readable length.</summary>
    private static string Printable(string? path)
    {
        if (path is null)
        {
            return string.Empty;
        }

        var clean = new string(path.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return clean.Length <= 300 ? clean : clean[..300] + "…";
    }
}

/// <summary>A path outside every allowed storage root, or not a valid path; the message names the path and the setting.</summary>
public sealed class PathNotAllowedException : Exception
{
    public PathNotAllowedException()
    {
    }

    public PathNotAllowedException(string message)
        : base(message)
    {
    }

    public PathNotAllowedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
