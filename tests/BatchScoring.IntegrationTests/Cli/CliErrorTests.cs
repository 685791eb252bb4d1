using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// Errors of the real CLI process against the real service: one line on stderr, no stack trace, the exit code of the
/// README's table (1 refused, 2 usage or configuration, 7 unreachable).
/// </summary>
public sealed class CliErrorTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Refused_operations_and_bad_input_are_one_line_with_their_exit_code()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "clierr", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 1], seed: 3).Bytes, Ct);
        var api = host.Client.BaseAddress!.ToString();

        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "models", "alias", "--name", "m", "--alias", "prod", "--version", "9", "--api", api));
        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "models", "rollback", "--name", "m", "--alias", "nope", "--api", api), "has no alias 'nope'");
        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "jobs", "status", Guid.NewGuid().ToString(), "--api", api), "404");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct,
            "jobs", "submit", "--model", "m", "--input", Path.Combine(host.WorkDir, "missing.parquet"), "--key-column", "id", "--output-table", "t", "--api", api), "400");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, "jobs", "status", "not-a-guid", "--api", api));
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, "jobs", "status", Guid.NewGuid().ToString(), "--timeout", "5", "--api", api), "--timeout needs --wait");
    }

    [Fact]
    public async Task Unreachable_api_database_or_broker_exit_7_without_a_stack_trace()
    {
        var closed = CliAssert.ClosedPort();
        CliAssert.OneLineError(7, await CliProcess.RunAsync(Ct, "jobs", "status", Guid.NewGuid().ToString(), "--api", $"http://127.0.0.1:{closed}"), "cannot reach the API");
        CliAssert.OneLineError(7, await CliProcess.RunAsync(Ct, "jobs", "list", "--api", $"http://127.0.0.1:{closed}"), "cannot reach the API");

        var deadDatabase = $"Host=127.0.0.1;Port={closed};Username=postgres;Database=postgres;Timeout=2";
        CliAssert.OneLineError(7, await CliProcess.RunAsync(
            new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = deadDatabase }, Ct, "migrate", "--connect-timeout", "1"), "PostgreSQL is not reachable");
        CliAssert.OneLineError(7, await CliProcess.RunAsync(
            new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = deadDatabase, ["ConnectionStrings__RabbitMq"] = servers.RabbitMqUri },
            Ct, "serve", "--roles", "worker", "--urls", "http://127.0.0.1:0", "--migrate", "--migrate-timeout", "1"), "PostgreSQL is not reachable");

        // A broker that is down: serve either waits for it or gives up with 7; never a stack trace.
        var brokerDown = await CliAssert.RunWithLimitAsync(
            new Dictionary<string, string?>
            {
                ["ConnectionStrings__Postgres"] = servers.PostgresConnectionString,
                ["ConnectionStrings__RabbitMq"] = $"amqp://guest:guest@127.0.0.1:{closed}/",
            },
            TimeSpan.FromSeconds(30), Ct, "serve", "--roles", "worker", "--urls", "http://127.0.0.1:0");
        Assert.DoesNotContain("   at ", brokerDown.Stdout + brokerDown.Stderr, StringComparison.Ordinal);
        if (!brokerDown.TimedOut)
        {
            CliAssert.OneLineError(7, (brokerDown.Exit, brokerDown.Stdout, brokerDown.Stderr), "RabbitMQ is not reachable");
        }
    }

    [Fact]
    public async Task Missing_connection_strings_are_usage_errors()
    {
        var none = new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = null, ["ConnectionStrings__RabbitMq"] = null };
        CliAssert.OneLineError(2, await CliProcess.RunAsync(none, Ct, "migrate"), "ConnectionStrings__Postgres");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(none, Ct, "serve", "--urls", "http://127.0.0.1:0"), "ConnectionStrings__Postgres");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(
            new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = servers.PostgresConnectionString, ["ConnectionStrings__RabbitMq"] = "not a uri" },
            Ct, "serve", "--urls", "http://127.0.0.1:0"), "ConnectionStrings:RabbitMq is not an AMQP URI");
        CliAssert.OneLineError(2, await CliProcess.RunAsync(none, Ct, "serve", "--roles", "chef"), "unknown role 'chef'");
    }

    [Theory]
    [InlineData("CpuRowsPerRun", "-1", "BatchScoring:CpuRowsPerRun must not be negative (0 = whole batches; was -1)")]
    [InlineData("IntraOpThreads", "-2", "BatchScoring:IntraOpThreads must not be negative (0 = cores ÷ ChunkConcurrency; was -2)")]
    [InlineData("ChunkConcurrency", "0", "BatchScoring:ChunkConcurrency must be between 1 and 64 (was 0)")]
    public async Task Serve_refuses_an_invalid_scoring_setting_in_one_line_naming_it(string setting, string value, string message)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Postgres"] = servers.PostgresConnectionString,
            ["ConnectionStrings__RabbitMq"] = servers.RabbitMqUri,
            [$"BatchScoring__{setting}"] = value,
        };
        var run = await CliAssert.RunWithLimitAsync(environment, TimeSpan.FromSeconds(60), Ct, "serve", "--roles", "worker", "--urls", "http://127.0.0.1:0");
        Assert.False(run.TimedOut, $"serve started with BatchScoring:{setting} = {value}");
        CliAssert.OneLineError(2, (run.Exit, run.Stdout, run.Stderr), message);
    }
}
