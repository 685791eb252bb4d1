using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using BatchScoring.IntegrationTests.Infrastructure;
using MassTransit;

namespace BatchScoring.IntegrationTests.Architecture;

/// <summary>
/// MassTransit 9 is a commercial product: without a licence every broker-enabled host fails at
/// start-up, but its licence check is skipped under test runners, so the tests alone would not notice
/// an upgrade. Keep every MassTransit package below major version 9.
/// </summary>
public sealed partial class MassTransitVersionTests
{
    private const int FirstCommercialMajor = 9;

    [Fact]
    public void Loaded_MassTransit_assemblies_are_below_version_9()
    {
        Assembly[] loaded =
        [
            typeof(IBus).Assembly, // MassTransit.Abstractions
            typeof(Bus).Assembly, // MassTransit
            typeof(RabbitMqBusFactory).Assembly, // MassTransit.RabbitMqTransport
        ];

        foreach (var assembly in loaded)
        {
            var name = assembly.GetName();
            var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            Assert.True(name.Version!.Major < FirstCommercialMajor, $"{name.Name} assembly version {name.Version} is MassTransit v9+ (commercial)");
            Assert.NotNull(informational);
            Assert.True(
                MajorOf(informational) < FirstCommercialMajor,
                $"{name.Name} package version {informational} is MassTransit v9+ (commercial)");
        }
    }

    [Fact]
    public void Every_deployed_MassTransit_assembly_is_below_version_9()
    {
        var files = Directory.GetFiles(AppContext.BaseDirectory, "MassTransit*.dll");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var version = AssemblyName.GetAssemblyName(file).Version!;
            Assert.True(version.Major < FirstCommercialMajor, $"{Path.GetFileName(file)} is version {version}: MassTransit v9+ is commercial");
        }
    }

    [Fact]
    public void Central_package_versions_pin_MassTransit_below_9()
    {
        var propsPath = RepositoryPaths.DirectoryPackagesProps;
        var document = XDocument.Load(propsPath);
        var properties = document.Descendants("PropertyGroup").Elements()
            .GroupBy(e => e.Name.LocalName)
            .ToDictionary(g => g.Key, g => g.Last().Value.Trim(), StringComparer.OrdinalIgnoreCase);

        var pins = document.Descendants("PackageVersion")
            .Select(e => (Package: (string?)e.Attribute("Include") ?? "", Version: (string?)e.Attribute("Version") ?? ""))
            .Where(p => p.Package.StartsWith("MassTransit", StringComparison.OrdinalIgnoreCase))
            .ToList();

        Assert.Contains(pins, p => p.Package.Equals("MassTransit", StringComparison.OrdinalIgnoreCase));
        foreach (var (package, rawVersion) in pins)
        {
            var version = ExpandProperties(rawVersion, properties);
            Assert.True(
                MajorOf(version) < FirstCommercialMajor,
                $"{propsPath}: {package} is pinned to '{rawVersion}' (= '{version}'); MassTransit v9+ is commercial, stay on 8.x");
        }
    }

    [Fact]
    public void No_project_overrides_the_MassTransit_version()
    {
        var root = Path.GetDirectoryName(RepositoryPaths.DirectoryPackagesProps)!;
        var projects = Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !p.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

        foreach (var project in projects)
        {
            var overrides = XDocument.Load(project).Descendants("PackageReference")
                .Where(e => ((string?)e.Attribute("Include") ?? "").StartsWith("MassTransit", StringComparison.OrdinalIgnoreCase))
                .Select(e => (string?)e.Attribute("VersionOverride") ?? (string?)e.Attribute("Version"))
                .Where(v => v is not null)
                .ToList();
            Assert.True(overrides.Count == 0, $"{project} sets a MassTransit version ({string.Join(", ", overrides)}); versions belong in Directory.Packages.props");
        }
    }

    private static string ExpandProperties(string value, IReadOnlyDictionary<string, string> properties)
    {
        for (var depth = 0; depth < 10 && value.Contains("$(", StringComparison.Ordinal); depth++)
        {
            value = PropertyReference().Replace(value, m =>
                properties.TryGetValue(m.Groups[1].Value, out var v)
                    ? v
                    : throw new InvalidOperationException($"property $({m.Groups[1].Value}) is not defined in Directory.Packages.props"));
        }

        return value;
    }

    /// <summary>Major version of "8.5.12", "[8.5.12]", "[8.0,9.0)", "8.5.12+sha" and the like (the lower bound for ranges).</summary>
    private static int MajorOf(string version)
    {
        var match = LeadingNumber().Match(version);
        Assert.True(match.Success, $"cannot read a version number from '{version}'");
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")]
    private static partial Regex PropertyReference();

    [GeneratedRegex(@"^\s*[\[(]?\s*(\d+)")]
    private static partial Regex LeadingNumber();
}
