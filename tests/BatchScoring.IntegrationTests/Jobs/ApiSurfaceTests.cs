using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Requests;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Jobs;

public sealed class ApiSurfaceTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Write_routes_need_a_full_key_read_routes_any_key_and_probes_none()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "keys", ServiceRoles.Api | ServiceRoles.Worker, Ct,
            new Dictionary<string, string> { ["BatchScoring:Api:Keys:0"] = "writer-secret", ["BatchScoring:Api:ReadOnlyKeys:0"] = "reader-secret" });
        var model = SampleModels.Mlp([4, 1], seed: 1).Bytes;

        async Task<HttpStatusCode> Send(HttpMethod method, string path, string? key, HttpContent? content = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            if (key is not null)
            {
                request.Headers.Add("X-Api-Key", key);
            }

            using var response = await host.Client.SendAsync(request, Ct);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Post, "/api/models/m/versions", null, new ByteArrayContent(model)));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, "/api/models/m/versions", "reader-secret", new ByteArrayContent(model)));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "/api/jobs", "wrong"));
        Assert.Equal(HttpStatusCode.Created, await Send(HttpMethod.Post, "/api/models/m/versions", "writer-secret", new ByteArrayContent(model)));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/api/models", "reader-secret"));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/health/live", null));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/health/ready", null));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/openapi/v1.json", null));
        var metrics = await host.Client.GetStringAsync("/metrics", Ct);
        Assert.Contains("batchscoring_", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Alias_moves_are_recorded_and_rollback_undoes_the_last_one()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "alias", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 1).Bytes, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 2).Bytes, Ct);

        async Task<HttpStatusCode> Put(string alias, int version)
        {
            using var response = await host.Client.PutAsJsonAsync($"/api/models/churn/aliases/{alias}", new { version }, Ct);
            return response.StatusCode;
        }

        async Task<List<(int Version, int? Previous)>> History(string alias) =>
            (await host.Client.GetFromJsonAsync<List<BatchScoring.Data.AliasChange>>($"/api/models/churn/aliases/{alias}/history", ServiceTestHost.Json, Ct))!
                .Select(c => (c.Version, c.PreviousVersion)).ToList();

        Assert.Equal(HttpStatusCode.OK, await Put("production", 1));
        Assert.Equal(HttpStatusCode.OK, await Put("production", 2));
        Assert.Equal([(2, (int?)1), (1, null)], await History("production"));

        using (var rollback = await host.Client.PostAsync("/api/models/churn/aliases/production/rollback", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        }

        var versions = (await host.Client.GetFromJsonAsync<List<ModelVersionInfo>>("/api/models/churn/versions", ServiceTestHost.Json, Ct))!;
        Assert.Equal([1], versions.Where(v => v.Aliases.Contains("production")).Select(v => v.Version));
        Assert.Equal([(1, (int?)2), (2, 1), (1, null)], await History("production"));

        Assert.Equal(HttpStatusCode.OK, await Put("staging", 2));
        using (var nothingBefore = await host.Client.PostAsync("/api/models/churn/aliases/staging/rollback", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, nothingBefore.StatusCode);
            Assert.Contains("no earlier version", await nothingBefore.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using var unknown = await host.Client.PostAsync("/api/models/churn/aliases/canary/rollback", null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Bodies_the_api_cannot_read_get_a_400_problem_that_names_the_field()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "badbody", ServiceRoles.Api, Ct);

        async Task<(HttpStatusCode Status, string Body)> Post(string path, string json)
        {
            using var response = await host.Client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"), Ct);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
        }

        var wrongType = await Post("/api/jobs", """{"model":"churn","input":"/x.parquet","keyColumn":"id","outputTable":"scoring.r","chunkRows":"many"}""");
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.Status);
        Assert.Contains("$.chunkRows", wrongType.Body, StringComparison.Ordinal);

        var missing = await Post("/api/models/churn/profile", """{"version":"1"}""");
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Contains("input", missing.Body, StringComparison.Ordinal);

        var broken = await Post("/api/jobs", """{"model": "churn", """);
        Assert.Equal(HttpStatusCode.BadRequest, broken.Status);
        Assert.Contains("The request body is not valid", broken.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancel_stops_remaining_chunks_and_retry_finishes_them_exactly_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "cancel", ServiceRoles.All, Ct,
            new Dictionary<string, string> { ["BatchScoring:ChunkConcurrency"] = "1" });
        await host.RegisterModelAsync("csv", SampleModels.Mlp([2, 64, 64, 1], seed: 4).Bytes, Ct);
        var csv = Path.Combine(host.WorkDir, "in.csv");
        var lines = new StringBuilder("id,a,b\n");
        for (var i = 0; i < 40_000; i++)
        {
            lines.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i},{i * 0.001},{1 - (i * 0.001)}\n");
        }

        await File.WriteAllTextAsync(csv, lines.ToString(), Ct);
        var (_, job, body) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "csv", Input = csv, KeyColumn = "id", OutputTable = "csv_results", ChunkRows = 500, Features = ["a", "b"] }, Ct);
        Assert.True(job is not null, body);
        Assert.Equal(80, job!.ChunksTotal);

        using (var cancel = await host.Client.PostAsync($"/api/jobs/{job.Id}/cancel", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        }

        var cancelled = await host.WaitForEndAsync(job.Id, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal("cancelled", cancelled.State);
        // The worker drains (and skips) the chunk messages still queued.
        await using (var broker = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct))
        {
            await broker.WaitUntilDeliveredAsync(host.Settings["BatchScoring:QueuePrefix"] + "score-chunks", TimeSpan.FromSeconds(30), Ct);
        }

        var afterCancel = await host.GetStatusAsync(job.Id, Ct);
        Assert.True(afterCancel.ChunksDone < 80, "cancel came too late to stop anything");

        using (var retry = await host.Client.PostAsync($"/api/jobs/{job.Id}/retry", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        }

        var final = await host.WaitForEndAsync(job.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.Equal("succeeded", final.State);
        Assert.Equal(40_000, final.ScoredRows);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT count(*), count(DISTINCT id) FROM scoring.csv_results");
        await using var reader = await count.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        Assert.Equal((40_000L, 40_000L), (reader.GetInt64(0), reader.GetInt64(1)));
    }
}
