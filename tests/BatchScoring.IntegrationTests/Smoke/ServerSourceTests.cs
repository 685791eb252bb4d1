using BatchScoring.IntegrationTests.Infrastructure;

namespace BatchScoring.IntegrationTests.Smoke;

public sealed class ServerSourceTests(ServerFixture servers)
{
    /// <summary>
    /// Fails with the fixture's explanation when no servers could be found or started, and otherwise
    /// writes where they came from into the test output (shown by `dotnet test --output detailed`).
    /// </summary>
    [Fact]
    public void Fixture_reports_where_its_servers_come_from()
    {
        var source = servers.Source;
        var postgres = new Npgsql.NpgsqlConnectionStringBuilder(servers.PostgresConnectionString);
        var rabbit = new Uri(servers.RabbitMqUri);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"integration test servers: {source} (PostgreSQL {postgres.Host}:{postgres.Port}/{postgres.Database}, RabbitMQ {rabbit.Host}:{rabbit.Port})");

        string[] known =
        [
            ServerFixture.SourceEnvironment, ServerFixture.SourceTestcontainers,
            ServerFixture.SourceLocalStarted, ServerFixture.SourceLocalFound,
        ];
        Assert.Contains(servers.PostgresSource, known);
        Assert.Contains(servers.RabbitMqSource, known);
        Assert.StartsWith("amqp", rabbit.Scheme, StringComparison.Ordinal);
    }
}
