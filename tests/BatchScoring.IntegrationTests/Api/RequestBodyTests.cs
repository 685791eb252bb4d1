using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Api;

/// <summary>Request bodies are read strictly (schemas/submit-scoring-job.schema.json) and within limits; every refusal names the JSON path.</summary>
public sealed class RequestBodyTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task Unknown_fields_wrong_types_bad_numbers_broken_and_oversized_json_are_refused_naming_the_path()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "bodies", ServiceRoles.Api, Ct,
            new Dictionary<string, string> { ["BatchScoring:Api:MaxBodyBytes"] = "65536", ["BatchScoring:Api:MaxModelBytes"] = "4096" });
        await host.RegisterModelAsync("churn", SampleModels.Mlp([2, 1], seed: 1).Bytes, Ct);
        var input = await ApiTestData.WriteCsvAsync(host.WorkDir, rows: 10, Ct);
        // Without the closing brace, so a test can add fields.
        var valid = $"{{\"model\":\"churn\",\"input\":{System.Text.Json.JsonSerializer.Serialize(input)},\"keyColumn\":\"id\",\"features\":[\"a\",\"b\"],\"outputTable\":\"r_bodies\"";

        async Task<HttpResponseMessage> Post(string path, string json) => await host.Client.PostAsync(path, Json(json), Ct);

        using (var r = await Post("/api/jobs", valid + ""","colour":"blue"}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.colour", "unknown field 'colour'");
        }

        using (var r = await Post("/api/jobs", valid + ""","chunkrows":5,"maxFailedPercnt":3}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "maxFailedPercnt");
        }

        using (var r = await Post("/api/models/churn/drift/audit", """{"version":"1","windowHour":3}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.windowHour");
        }

        using (var r = await host.Client.PutAsync("/api/models/churn/aliases/production", Json("""{"version":1,"forced":true}"""), Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.forced");
        }

        using (var r = await Post("/api/jobs", valid + ""","chunkRows":"many"}"""))
        {
            var problem = await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.chunkRows", "whole number");
            Assert.True(problem.GetProperty("errors").TryGetProperty("$.chunkRows", out _));
        }

        using (var r = await Post("/api/jobs", valid + ""","chunkRows":99999999999}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.chunkRows");
        }

        using (var r = await Post("/api/jobs", valid + ""","passthrough":"region"}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.passthrough", "an array");
        }

        using (var r = await Post("/api/jobs", valid + ""","batchRows":-5,"chunkRows":0,"maxFailedPercent":150,"maxFailedRows":-1}"""))
        {
            var problem = await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.batchRows", "$.chunkRows", "$.maxFailedPercent", "$.maxFailedRows");
            Assert.Equal(4, problem.GetProperty("errors").EnumerateObject().Count());
        }

        using (var r = await Post("/api/jobs", """{"model":"churn","input":"","keyColumn":"id","outputTable":"t"}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.input");
        }

        using (var r = await Post("/api/jobs", """{"model":"churn","keyColumn":"id","outputTable":"t"}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "missing required", "'input'");
        }

        using (var r = await Post("/api/jobs", valid[..^10]))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "malformed JSON");
        }

        using (var r = await Post("/api/jobs", "null"))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest);
        }

        using (var r = await Post("/api/jobs", valid + ""","features":""" + new string('[', 200) + new string(']', 200) + "}"))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "$.features");
        }

        using (var r = await host.Client.PostAsync("/api/jobs", new StringContent(valid + "}", Encoding.UTF8, "text/plain"), Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.UnsupportedMediaType);
        }

        var huge = valid + ""","passthrough":[""" + string.Join(',', Enumerable.Repeat("\"region\"", 20_000)) + "]}";
        using (var r = await Post("/api/jobs", huge))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.RequestEntityTooLarge, "65,536 bytes");
        }

        using (var r = await host.Client.PostAsync("/api/models/big/versions", new ByteArrayContent(new byte[10_000]), Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.RequestEntityTooLarge, "4,096 bytes");
        }

        using (var r = await Post("/api/jobs", valid.Replace("\"churn\"", "\"nosuch\"", StringComparison.Ordinal) + "}"))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'nosuch'");
        }

        using (var r = await Post("/api/jobs", valid + ""","modelVersion":"canary"}"""))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'churn'", "'canary'");
        }

        // The service still serves, and a valid body is accepted.
        using (var r = await Post("/api/jobs", valid + "}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        }
    }

    [Fact]
    public async Task An_idempotency_key_reused_with_another_body_is_a_409_and_concurrent_reuse_creates_one_job()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "idem", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([2, 1], seed: 1).Bytes, Ct);
        var input = await ApiTestData.WriteCsvAsync(host.WorkDir, rows: 100, Ct);
        var request = new SubmitScoringJob { Model = "churn", Input = input, KeyColumn = "id", Features = ["a", "b"], OutputTable = "r_idem", ChunkRows = 10 };

        async Task<(HttpStatusCode Status, string Body, Guid? Id)> Submit(SubmitScoringJob body, string key)
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = JsonContent.Create(body, options: ServiceTestHost.Json) };
            message.Headers.Add("Idempotency-Key", key);
            using var response = await host.Client.SendAsync(message, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            var id = response.IsSuccessStatusCode ? System.Text.Json.JsonSerializer.Deserialize<JobStatus>(text, ServiceTestHost.Json)!.Id : (Guid?)null;
            return (response.StatusCode, text, id);
        }

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => Submit(request, "nightly-1"), Ct)));

        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.Accepted or HttpStatusCode.OK, a.Body));
        Assert.Single(answers, a => a.Status == HttpStatusCode.Accepted);
        var id = answers[0].Id;
        Assert.All(answers, a => Assert.Equal(id, a.Id));
        await using (var db = NpgsqlDataSource.Create(host.PostgresConnectionString))
        await using (var count = db.CreateCommand("SELECT count(*) FROM scoring.jobs"))
        {
            Assert.Equal(1L, (long)(await count.ExecuteScalarAsync(Ct))!);
        }

        var again = await Submit(request, "nightly-1");
        Assert.Equal((HttpStatusCode.OK, id), (again.Status, again.Id));

        using var conflict = await host.Client.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, "/api/jobs")
            {
                Content = JsonContent.Create(request with { ChunkRows = 20, IdempotencyKey = "nightly-1" }, options: ServiceTestHost.Json),
            },
            Ct);
        await ProblemAssert.IsProblemAsync(conflict, HttpStatusCode.Conflict, "'nightly-1'", id.ToString()!, "different request");
    }
}
