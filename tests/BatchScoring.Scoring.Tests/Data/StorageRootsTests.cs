using BatchScoring.Scoring.Data;

namespace BatchScoring.Scoring.Tests.Data;

public sealed class StorageRootsTests : IDisposable
{
    private readonly string _base = Directory.CreateTempSubdirectory("bs-roots-").FullName;
    private readonly string _root;
    private readonly string _outside;
    private readonly StorageRoots _roots;

    public StorageRootsTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_base, "data")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_base, "elsewhere")).FullName;
        File.WriteAllText(Path.Combine(_root, "in.csv"), "id\n1\n");
        File.WriteAllText(Path.Combine(_outside, "secret.csv"), "id\n1\n");
        _roots = new StorageRoots([_root]);
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    [Fact]
    public void Paths_inside_a_root_are_allowed_and_come_back_resolved()
    {
        Assert.Equal(Path.Combine(_root, "in.csv"), _roots.Confine(Path.Combine(_root, "in.csv"), "Input"));
        Assert.Equal(Path.Combine(_root, "in.csv"), _roots.Confine(Path.Combine(_root, "sub", "..", "in.csv"), "Input"));
        Assert.Equal(_root, _roots.Confine(_root, "Input"));
        Assert.Equal(Path.Combine(_root, "new", "out"), _roots.Confine(Path.Combine(_root, "new", "out"), "OutputParquet"));
    }

    [Fact]
    public void Dot_dot_traversal_and_absolute_paths_elsewhere_are_refused_naming_the_path_and_the_setting()
    {
        var traversal = Path.Combine(_root, "..", "elsewhere", "secret.csv");

        var error = Assert.Throws<PathNotAllowedException>(() => _roots.Confine(traversal, "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine("/etc/passwd", "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(_root + "-evil/x.csv", "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(_root, "missing", "..", "..", "elsewhere"), "OutputParquet"));

        Assert.Contains(traversal, error.Message, StringComparison.Ordinal);
        Assert.Contains(StorageRoots.SettingName, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("Input:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Symlink_escapes_are_refused_for_files_directories_and_not_yet_existing_outputs()
    {
        var fileLink = Path.Combine(_root, "passwd.csv");
        File.CreateSymbolicLink(fileLink, Path.Combine(_outside, "secret.csv"));
        var dirLink = Path.Combine(_root, "shared");
        Directory.CreateSymbolicLink(dirLink, _outside);
        var dangling = Path.Combine(_root, "later");
        Directory.CreateSymbolicLink(dangling, Path.Combine(_outside, "not-yet"));
        var relativeUp = Path.Combine(_root, "up");
        Directory.CreateSymbolicLink(relativeUp, "../elsewhere");

        var error = Assert.Throws<PathNotAllowedException>(() => _roots.Confine(fileLink, "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(dirLink, "secret.csv"), "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(dirLink, "new-output"), "OutputParquet"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(dangling, "part"), "OutputParquet"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(relativeUp, "secret.csv"), "Input"));
        // "link/.." is the link target's parent, as the kernel resolves it, not the root.
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine(Path.Combine(dirLink, "..", "elsewhere", "secret.csv"), "Input"));

        Assert.Contains(Path.Combine(_outside, "secret.csv"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Links_that_stay_inside_and_a_root_that_is_itself_a_link_are_allowed()
    {
        var inner = Path.Combine(_root, "alias.csv");
        File.CreateSymbolicLink(inner, "in.csv");
        var linkedRoot = Path.Combine(_base, "data-link");
        Directory.CreateSymbolicLink(linkedRoot, _root);

        Assert.Equal(Path.Combine(_root, "in.csv"), _roots.Confine(inner, "Input"));
        Assert.Equal(Path.Combine(_root, "in.csv"), new StorageRoots([linkedRoot]).Confine(Path.Combine(_root, "in.csv"), "Input"));
        Assert.Equal(Path.Combine(_root, "in.csv"), _roots.Confine(Path.Combine(linkedRoot, "in.csv"), "Input"));
    }

    [Fact]
    public void Link_loops_and_malformed_paths_are_refused()
    {
        var a = Path.Combine(_root, "a");
        var b = Path.Combine(_root, "b");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);

        Assert.Contains("symbolic links", Assert.Throws<PathNotAllowedException>(() => _roots.Confine(a, "Input")).Message, StringComparison.Ordinal);
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine("in\0.csv", "Input"));
        Assert.Throws<PathNotAllowedException>(() => _roots.Confine("  ", "Input"));
    }

    [Fact]
    public void Without_roots_every_path_is_allowed_as_its_absolute_form()
    {
        Assert.False(StorageRoots.Unconfined.IsConfined);
        Assert.Equal("/etc/passwd", StorageRoots.Unconfined.Confine("/etc/passwd", "Input"));
        Assert.Equal(Path.GetFullPath("rel/x.csv"), StorageRoots.Unconfined.Confine("rel/x.csv", "Input"));
    }

    [Fact]
    public async Task Planning_a_directory_refuses_a_file_that_links_outside()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "dir")).FullName;
        File.WriteAllText(Path.Combine(dir, "a.csv"), "id\n1\n");
        File.CreateSymbolicLink(Path.Combine(dir, "b.csv"), Path.Combine(_outside, "secret.csv"));

        var error = await Assert.ThrowsAsync<DatasetException>(() => Dataset.PlanAsync(dir, 10, _roots, TestContext.Current.CancellationToken));
        var chunk = new ChunkSpec(0, Path.Combine(_outside, "secret.csv"), null, 0, 1, 3);
        var read = await Assert.ThrowsAsync<DatasetException>(() => Dataset.ReadChunkAsync(
            DatasetFormat.Csv, chunk, [new SourceColumn("id", ColumnKind.Int64, true)], _roots, TestContext.Current.CancellationToken));

        Assert.Contains("b.csv", error.Message, StringComparison.Ordinal);
        Assert.Contains(StorageRoots.SettingName, read.Message, StringComparison.Ordinal);
    }
}
