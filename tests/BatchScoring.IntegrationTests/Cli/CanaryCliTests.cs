using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary><c>models alias --canary --percent</c> and <c>models history</c> from the real CLI process against the real service.</summary>
public sealed class CanaryCliTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Canary_starts_shows_in_history_and_a_plain_move_ends_it()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "clicanary", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 1], seed: 3).Bytes, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 1], seed: 4).Bytes, Ct);
        var api = host.Client.BaseAddress!.ToString();
        string[] Alias(params string[] more) => ["models", "alias", "--name", "m", "--alias", "production", .. more, "--api", api];

        var started = await CliProcess.RunAsync(Ct, Alias("--version", "1", "--canary", "2", "--percent", "30"));
        Assert.True(started.Exit == 0, started.Stderr);
        Assert.Contains("production → m v1, canary v2 on 30% of rows", started.Stderr, StringComparison.Ordinal);

        var ended = await CliProcess.RunAsync(Ct, Alias("--version", "2"));
        Assert.True(ended.Exit == 0, ended.Stderr);
        var history = await CliProcess.RunAsync(Ct, "models", "history", "--name", "m", "--alias", "production", "--api", api);
        var lines = history.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith("production → v2 (was v1), canary v2 ended by local", lines[0].TrimEnd(), StringComparison.Ordinal);
        Assert.EndsWith("production → v1 (created), canary v2 on 30% of rows by local", lines[1].TrimEnd(), StringComparison.Ordinal);

        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, Alias("--version", "1", "--percent", "10")), "--percent needs --canary");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, Alias("--version", "1", "--canary", "2", "--percent", "100")), "between 1 and 99");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, Alias("--version", "1", "--canary", "1", "--percent", "10")), "must differ");
        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, Alias("--version", "1", "--canary", "9", "--percent", "10")), "no version 9");
    }
}
