using BatchScoring.IntegrationTests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.IntegrationTests.Smoke;

public sealed class PostgresSmokeTests(ServerFixture servers)
{
    private const int RowCount = 1000;

    [Fact]
    public async Task Binary_copy_writes_rows_that_read_back_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        var table = servers.UniqueName("smoke_copy");
        var start = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        await using var dataSource = NpgsqlDataSource.Create(servers.PostgresConnectionString);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using (var create = new NpgsqlCommand(
            $"CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, score double precision, " +
            "scored_at timestamptz NOT NULL, features real[] NOT NULL, payload bytea)",
            connection))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        ulong written;
        await using (var writer = await connection.BeginBinaryImportAsync(
            $"COPY {table} (id, name, score, scored_at, features, payload) FROM STDIN (FORMAT BINARY)", ct))
        {
            for (var i = 0; i < RowCount; i++)
            {
                await writer.StartRowAsync(ct);
                await writer.WriteAsync((long)i, NpgsqlDbType.Bigint, ct);
                await writer.WriteAsync($"row-{i}", NpgsqlDbType.Text, ct);
                if (i % 10 == 0)
                {
                    await writer.WriteNullAsync(ct);
                }
                else
                {
                    await writer.WriteAsync(i / 7.0, NpgsqlDbType.Double, ct);
                }

                await writer.WriteAsync(start.AddSeconds(i), NpgsqlDbType.TimestampTz, ct);
                await writer.WriteAsync(new[] { i, i + 0.5f }, NpgsqlDbType.Array | NpgsqlDbType.Real, ct);
                await writer.WriteAsync(BitConverter.GetBytes(i), NpgsqlDbType.Bytea, ct);
            }

            written = await writer.CompleteAsync(ct);
        }

        Assert.Equal((ulong)RowCount, written);

        await using (var count = new NpgsqlCommand($"SELECT count(*), count(score) FROM {table}", connection))
        await using (var reader = await count.ExecuteReaderAsync(ct))
        {
            Assert.True(await reader.ReadAsync(ct));
            Assert.Equal(RowCount, reader.GetInt64(0));
            Assert.Equal(RowCount - (RowCount / 10), reader.GetInt64(1));
        }

        await using (var select = new NpgsqlCommand(
            $"SELECT id, name, score, scored_at, features, payload FROM {table} WHERE id IN (0, 1, 999) ORDER BY id", connection))
        await using (var reader = await select.ExecuteReaderAsync(ct))
        {
            foreach (var id in new[] { 0, 1, 999 })
            {
                Assert.True(await reader.ReadAsync(ct));
                Assert.Equal(id, reader.GetInt64(0));
                Assert.Equal($"row-{id}", reader.GetString(1));
                if (id % 10 == 0)
                {
                    Assert.True(reader.IsDBNull(2));
                }
                else
                {
                    Assert.Equal(id / 7.0, reader.GetDouble(2));
                }

                Assert.Equal(start.AddSeconds(id), reader.GetFieldValue<DateTime>(3));
                Assert.Equal([id, id + 0.5f], reader.GetFieldValue<float[]>(4));
                Assert.Equal(BitConverter.GetBytes(id), reader.GetFieldValue<byte[]>(5));
            }

            Assert.False(await reader.ReadAsync(ct));
        }
    }

    [Fact]
    public async Task CreateDatabaseAsync_gives_an_empty_database_of_its_own()
    {
        var ct = TestContext.Current.CancellationToken;

        var connectionString = await servers.CreateDatabaseAsync("smoke_isolated", ct);

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'), " +
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        Assert.True(await reader.ReadAsync(ct));
        Assert.StartsWith(ServerFixture.DatabaseNamePrefix + "smoke_isolated_", reader.GetString(0), StringComparison.Ordinal);
        Assert.NotEqual(new NpgsqlConnectionStringBuilder(servers.PostgresConnectionString).Database, reader.GetString(0));
        Assert.Equal(0L, reader.GetInt64(1));
        Assert.True(reader.GetBoolean(2), "the test role should be a superuser");
    }
}
