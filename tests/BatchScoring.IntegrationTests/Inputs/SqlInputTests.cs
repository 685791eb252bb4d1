using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace BatchScoring.IntegrationTests.Inputs;

/// <summary>
/// Jobs whose rows come from a SQL query on a named PostgreSQL source: every row of the query is scored exactly once
/// (also when a chunk is delivered twice), the query cannot write, and unknown sources are refused.
/// </summary>
public sealed class SqlInputTests(ServerFixture servers)
{
    private const int Features = 4;
    private const int DayRows = 1000;
    private const string Day = "2026-12-01";
    private const string Query = $"select customer_id, f0, f1, f2, f3 from features where day = '{Day}'";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_SQL_job_scores_every_row_of_the_query_once_with_the_model_s_scores()
    {
        var source = await CreateSourceAsync("sqlsrc");
        await using var host = await StartAsync("sqljob", ServiceRoles.All, source);
        var model = SampleModels.Mlp([Features, 1], seed: 3);
        await host.RegisterModelAsync("m", model.Bytes, Ct);

        var (response, status, body) = await host.SubmitAsync(Job("sql_scores"), Ct);

        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal(DayRows, status!.TotalRows);
        Assert.Equal((DayRows + 149) / 150, status.ChunksTotal);
        Assert.Equal("sql:warehouse", status.Input);
        var final = await host.WaitForEndAsync(status.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(DayRows, final.ScoredRows);

        var expected = await SourceRowsAsync(source);
        var scored = await ScoresAsync(host, "sql_scores");
        Assert.Equal(expected.Count, scored.Count);
        Assert.Equal(expected.Keys.Order(), scored.Select(s => s.Key).Order());
        foreach (var (key, score) in scored)
        {
            // One Gemm and a Sigmoid: computed here from the model's weights, not by ONNX Runtime.
            var x = expected[key];
            var logit = model.Biases[0][0] + Enumerable.Range(0, Features).Sum(f => (double)model.Weights[0][f] * x[f]);
            Assert.Equal(1 / (1 + Math.Exp(-logit)), score, 5);
        }
    }

    [Fact]
    public async Task Chunks_delivered_twice_are_written_once_and_every_source_key_is_scored_once()
    {
        var source = await CreateSourceAsync("sqlredo");
        // No worker role: the test scores the chunks itself, each one twice at the same time, as two workers would.
        await using var host = await StartAsync("sqlredo", ServiceRoles.Api, source);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 3).Bytes, Ct);
        var (response, status, body) = await host.SubmitAsync(Job("sql_redo"), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);

        var outcomes = new List<ChunkOutcome>();
        for (var chunk = 0; chunk < status!.ChunksTotal; chunk++)
        {
            outcomes.AddRange(await Task.WhenAll(ScoreChunkAsync(host, status.Id, chunk), ScoreChunkAsync(host, status.Id, chunk)));
        }

        Assert.Equal(status.ChunksTotal, outcomes.Count(o => o == ChunkOutcome.Committed));
        Assert.Equal(status.ChunksTotal, outcomes.Count(o => o == ChunkOutcome.AlreadyDone));
        var final = await host.GetStatusAsync(status.Id, Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(DayRows, final.ScoredRows);
        var scored = await ScoresAsync(host, "sql_redo");
        Assert.Equal((await SourceRowsAsync(source)).Keys.Order(), scored.Select(s => s.Key).Order());
    }

    [Fact]
    public async Task Queries_that_write_and_unknown_sources_are_refused_at_submit_and_nothing_changes()
    {
        var source = await CreateSourceAsync("sqlro");
        await using var host = await StartAsync("sqlro", ServiceRoles.Api, source);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 3).Bytes, Ct);

        async Task<string> Refused(SubmitScoringJob request, params string[] expected)
        {
            var (response, _, body) = await host.SubmitAsync(request, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {body}");
            foreach (var text in expected)
            {
                Assert.Contains(text, body, StringComparison.Ordinal);
            }

            return body;
        }

        await Refused(Job("t") with { InputSql = "with d as (delete from features returning *) select customer_id, f0, f1, f2, f3 from d" }, "source 'warehouse' refused the query");
        await Refused(Job("t") with { InputSql = "select customer_id, f0, f1, f2, f3, nextval('ids') as n from features" }, "read-only transaction");
        await Refused(Job("t") with { InputSql = "select customer_id, f0, f1, f2, f3 from features; delete from features" }, "source 'warehouse' refused the query");
        await Refused(Job("t") with { InputSql = "delete from features returning customer_id, f0, f1, f2, f3" }, "must be a single SELECT");
        await Refused(Job("t") with { InputSql = "update features set f0 = 0" }, "must be a single SELECT");
        await Refused(Job("t") with { InputSource = "nosuch" }, "Source 'nosuch' is not configured", "BatchScoring:Sources:nosuch", "warehouse");
        await Refused(Job("t") with { InputSql = "select null::bigint as customer_id, f0, f1, f2, f3 from features" }, "Key column 'customer_id' is null in");
        await Refused(Job("t") with { Input = "/tmp/x.parquet" }, "not both");

        await using var db = NpgsqlDataSource.Create(source);
        await using (var count = db.CreateCommand("select count(*) from features"))
        {
            Assert.Equal(DayRows + 200L, (long)(await count.ExecuteScalarAsync(Ct))!);
        }

        await using (var sequence = db.CreateCommand("select is_called from ids"))
        {
            Assert.False((bool)(await sequence.ExecuteScalarAsync(Ct))!);
        }

        await using (var jobs = NpgsqlDataSource.Create(host.PostgresConnectionString).CreateCommand("select count(*) from scoring.jobs"))
        {
            Assert.Equal(0L, (long)(await jobs.ExecuteScalarAsync(Ct))!);
        }
    }

    [Fact]
    public async Task A_source_that_cannot_be_reached_is_answered_503_saying_so_and_no_job_is_recorded()
    {
        var offline = $"Host=127.0.0.1;Port={ServeProcess.FreeTcpPort()};Username=postgres;Timeout=3";
        await using var host = await ServiceTestHost.StartAsync(servers, "sqloff", ServiceRoles.Api, Ct, new Dictionary<string, string> { ["BatchScoring:Sources:offline"] = offline });
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 3).Bytes, Ct);

        var (response, _, body) = await host.SubmitAsync(Job("t") with { InputSource = "offline" }, Ct);

        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
        Assert.Contains("Input source 'offline' cannot be reached", body, StringComparison.Ordinal);
        Assert.Contains("the job was not recorded", body, StringComparison.Ordinal);
        await using var jobs = NpgsqlDataSource.Create(host.PostgresConnectionString).CreateCommand("select count(*) from scoring.jobs");
        Assert.Equal(0L, (long)(await jobs.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task The_CLI_submits_a_SQL_job_and_waits_for_it_and_refuses_bad_input_options_with_exit_2()
    {
        var source = await CreateSourceAsync("sqlcli");
        await using var host = await StartAsync("sqlcli", ServiceRoles.All, source);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 3).Bytes, Ct);
        var api = host.Client.BaseAddress!.ToString();
        string[] submit = ["jobs", "submit", "--model", "m", "--key-column", "customer_id", "--output-table", "cli_scores", "--api", api];

        var (exit, stdout, stderr) = await CliProcess.RunAsync(Ct, [.. submit, "--input-sql", Query, "--input-source", "warehouse", "--chunk-rows", "400", "--wait", "--json"]);

        Assert.True(exit == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal("succeeded", json.RootElement.GetProperty("state").GetString());
        Assert.Equal(DayRows, json.RootElement.GetProperty("scoredRows").GetInt64());
        Assert.Equal(DayRows, (await ScoresAsync(host, "cli_scores")).Count);

        Cli.CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, [.. submit, "--input-sql", Query, "--input-source", "nosuch"]), "Source 'nosuch' is not configured");
        Cli.CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, [.. submit, "--input-sql", Query]), "--input-sql needs --input-source");
        Cli.CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, [.. submit, "--input-sql", Query, "--input-source", "warehouse", "--input", "x.parquet"]), "one of the two");
    }

    private static SubmitScoringJob Job(string table) => new()
    {
        Model = "m",
        InputSql = Query,
        InputSource = "warehouse",
        KeyColumn = "customer_id",
        OutputTable = table,
        ChunkRows = 150,
    };

    private Task<ServiceTestHost> StartAsync(string name, ServiceRoles roles, string source) =>
        ServiceTestHost.StartAsync(servers, name, roles, Ct, new Dictionary<string, string> { ["BatchScoring:Sources:warehouse"] = source });

    /// <summary>A database of its own with 1,000 rows of the scored day (keys with gaps) and 200 of another day.</summary>
    private async Task<string> CreateSourceAsync(string name)
    {
        var connectionString = await servers.CreateDatabaseAsync(name, Ct);
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand(
            $"""
            create table features (customer_id bigint primary key, day date not null, f0 real, f1 real, f2 real, f3 real);
            insert into features
            select i * 7 + 3, case when i < {DayRows} then date '{Day}' else date '2026-11-30' end,
                   sin(i)::real, cos(i)::real, ((i % 13) / 6.5 - 1)::real, ((i % 5) - 2)::real
            from generate_series(0, {DayRows + 199}) as i;
            create sequence ids;
            """);
        await command.ExecuteNonQueryAsync(Ct);
        return connectionString;
    }

    private static async Task<Dictionary<long, float[]>> SourceRowsAsync(string source)
    {
        await using var db = NpgsqlDataSource.Create(source);
        await using var command = db.CreateCommand($"select customer_id, f0, f1, f2, f3 from features where day = '{Day}'");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new Dictionary<long, float[]>();
        while (await reader.ReadAsync(Ct))
        {
            rows.Add(reader.GetInt64(0), [reader.GetFloat(1), reader.GetFloat(2), reader.GetFloat(3), reader.GetFloat(4)]);
        }

        return rows;
    }

    private static async Task<List<(long Key, double Score)>> ScoresAsync(ServiceTestHost host, string table)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand($"select customer_id, score from scoring.{table}");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<(long, double)>();
        while (await reader.ReadAsync(Ct))
        {
            rows.Add((reader.GetInt64(0), Convert.ToDouble(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)));
        }

        return rows;
    }

    private static async Task<ChunkOutcome> ScoreChunkAsync(ServiceTestHost host, Guid jobId, int index)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var chunk = (await scope.ServiceProvider.GetRequiredService<JobStore>().GetChunksAsync(jobId, Ct)).Single(c => c.ChunkIndex == index);
        return await scope.ServiceProvider.GetRequiredService<ChunkScorer>().ScoreAsync(
            ChunkRanges.ToMessage(chunk), Ct);
    }
}
