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

/// <summary>Every HTTP error is an application/problem+json document whose detail says what is wrong; nothing leaks.</summary>
public sealed class HttpProblemTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Bad_query_values_unknown_routes_and_missing_things_are_problems_that_say_what_is_wrong()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "problems", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([2, 1], seed: 1).Bytes, Ct);
        var client = host.Client;

        using (var r = await client.GetAsync("/api/jobs?state=bogus", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'state'", "queued, running, succeeded, failed, cancelled", "'bogus'");
        }

        using (var r = await client.GetAsync("/api/jobs?limit=many", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'limit'", "whole number", "'many'");
        }

        using (var r = await client.GetAsync("/api/jobs?limit=0", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'limit'", "between 1 and 1000");
        }

        using (var r = await client.GetAsync("/api/jobs?offset=-1", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'offset'");
        }

        using (var r = await client.GetAsync("/api/models/churn/drift?limit=100000", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'limit'");
        }

        var missingJob = Guid.NewGuid();
        using (var r = await client.GetAsync($"/api/jobs/{missingJob}", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, missingJob.ToString());
        }

        using (var r = await client.PostAsync($"/api/jobs/{missingJob}/cancel", null, Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, missingJob.ToString());
        }

        using (var r = await client.GetAsync("/api/no-such-route", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "/api/no-such-route");
        }

        using (var r = await client.DeleteAsync("/api/jobs", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.MethodNotAllowed, "DELETE");
        }

        using (var r = await client.GetAsync("/api/models/nope/versions", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "'nope'");
        }

        using (var r = await client.GetAsync("/api/models/churn/profile?version=7", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "'churn'", "'7'");
        }

        using (var r = await client.GetAsync("/api/models/churn/profile", Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "no reference profile");
        }

        using (var r = await client.PutAsJsonAsync("/api/models/churn/aliases/production", new { version = 9 }, Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "'churn'", "version 9");
        }

        using (var r = await client.PutAsJsonAsync("/api/models/churn/aliases/latest", new { version = 1 }, Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'latest'");
        }

        using (var r = await client.PostAsync("/api/models/churn/aliases/canary/rollback", null, Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "'canary'");
        }

        using (var r = await client.PostAsJsonAsync("/api/models/ghost/drift/audit", new { }, Ct))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.NotFound, "'ghost'");
        }

        using (var r = await client.PostAsync("/api/models/churn/versions", new ByteArrayContent(Encoding.ASCII.GetBytes("not an onnx model")), Ct))
        {
            var problem = await ProblemAssert.IsProblemAsync(r, HttpStatusCode.BadRequest, "'churn'", "not a loadable ONNX model");
            Assert.DoesNotContain(host.WorkDir, problem.GetRawText(), StringComparison.Ordinal); // not where the model store is
        }
    }

    [Fact]
    public async Task A_tampered_stored_model_is_a_409_problem_naming_the_model_and_the_cause()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "tamper", ServiceRoles.Api, Ct);
        var registered = await host.RegisterModelAsync("fraud", SampleModels.Mlp([2, 4, 1], seed: 2).Bytes, Ct);
        var stored = Path.Combine(host.Settings["BatchScoring:ModelStorePath"], $"{registered.Sha256}.onnx");
        var bytes = await File.ReadAllBytesAsync(stored, Ct);
        bytes[^1] ^= 0x5A;
        await File.WriteAllBytesAsync(stored, bytes, Ct);
        var input = await ApiTestData.WriteCsvAsync(host.WorkDir, rows: 10, Ct);

        var (response, _, _) = await host.SubmitAsync(
            new SubmitScoringJob { Model = "fraud", Input = input, KeyColumn = "id", Features = ["a", "b"], OutputTable = "fraud_results" }, Ct);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Conflict, "'fraud' v1", "SHA-256", registered.Sha256);
        Assert.DoesNotContain(host.WorkDir, problem.GetRawText(), StringComparison.Ordinal); // the store's path stays in the log
    }

    [Fact]
    public async Task An_unexpected_failure_is_a_500_problem_with_a_trace_id_and_no_exception_text()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "boom", ServiceRoles.Api, Ct);
        await using (var db = NpgsqlDataSource.Create(host.PostgresConnectionString))
        await using (var drop = db.CreateCommand("ALTER TABLE scoring.jobs RENAME TO jobs_gone"))
        {
            await drop.ExecuteNonQueryAsync(Ct);
        }

        using var response = await host.Client.GetAsync("/api/jobs", Ct);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.InternalServerError, "trace id");
        var text = problem.GetRawText();
        Assert.DoesNotContain("jobs", text.Replace("/api/jobs", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("relation", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Npgsql", text, StringComparison.Ordinal);
    }
}

internal static class ApiTestData
{
    /// <summary>A CSV with columns id, a, b (for a two-feature model).</summary>
    public static async Task<string> WriteCsvAsync(string dir, int rows, CancellationToken ct)
    {
        var path = Path.Combine(dir, $"in-{Guid.NewGuid():N}.csv");
        var text = new StringBuilder("id,a,b\n");
        for (var i = 0; i < rows; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i},{i * 0.01},{1 - (i * 0.01)}\n");
        }

        await File.WriteAllTextAsync(path, text.ToString(), ct);
        return path;
    }
}
