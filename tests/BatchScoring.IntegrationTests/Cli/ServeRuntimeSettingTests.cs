using BatchScoring.Cli.Commands;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// `serve` says at start when it runs with tiered compilation on (the runtimeconfig's setting, for the commands):
/// the deployments turn it off through the environment, which overrides the runtimeconfig.
/// </summary>
public sealed class ServeRuntimeSettingTests
{
    [Theory]
    [InlineData("0", null, false)]
    [InlineData(" 0 ", null, false)]
    [InlineData("1", null, true)]
    [InlineData(null, "0", false)]
    [InlineData("1", "0", true)] // DOTNET_ wins over the legacy COMPlus_ prefix, as in the runtime
    public void The_environment_decides_when_it_sets_tiered_compilation(string? dotnet, string? complus, bool expected)
    {
        var environment = new Dictionary<string, string?> { ["DOTNET_TieredCompilation"] = dotnet, ["COMPlus_TieredCompilation"] = complus };
        Assert.Equal(expected, ServeCommand.TieredCompilationOn(name => environment.GetValueOrDefault(name)));
    }

    [Fact]
    public void Without_the_environment_the_runtimeconfig_decides()
    {
        // This test process's runtimeconfig does not set it: the runtime's default, on (the service's says on too).
        Assert.True(ServeCommand.TieredCompilationOn(_ => null));
    }
}
