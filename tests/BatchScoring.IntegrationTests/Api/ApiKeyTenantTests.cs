using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.Options;

namespace BatchScoring.IntegrationTests.Api;

/// <summary>API keys with scopes and tenants: 401 and 403 problems, and a tenant never sees another tenant's jobs, models or reports.</summary>
public sealed class ApiKeyTenantTests(ServerFixture servers)
{
    private const string LegacyKey = "legacy-full-key-0001";
    private const string TeamAAdmin = "team-a-admin-key-0001";
    private const string TeamASubmitter = "team-a-submitter-key-01";
    private const string TeamAReader = "team-a-reader-key-00001";
    private const string TeamB = "team-b-everything-key-01";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Sha256Of(string key) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static Dictionary<string, string> KeyConfiguration() => new()
    {
        ["BatchScoring:Api:Keys:0"] = LegacyKey,
        ["BatchScoring:Api:Clients:0:Name"] = "team-a-admin",
        ["BatchScoring:Api:Clients:0:Key"] = Sha256Of(TeamAAdmin),
        ["BatchScoring:Api:Clients:0:Tenant"] = "team-a",
        ["BatchScoring:Api:Clients:0:Scopes:0"] = "admin",
        ["BatchScoring:Api:Clients:0:Scopes:1"] = "read",
        ["BatchScoring:Api:Clients:1:Key"] = Sha256Of(TeamASubmitter),
        ["BatchScoring:Api:Clients:1:Tenant"] = "team-a",
        ["BatchScoring:Api:Clients:1:Scopes:0"] = "submit,read",
        ["BatchScoring:Api:Clients:2:Key"] = TeamAReader, // plain keys work in Clients too
        ["BatchScoring:Api:Clients:2:Tenant"] = "team-a",
        ["BatchScoring:Api:Clients:2:Scopes:0"] = "read",
        ["BatchScoring:Api:Clients:3:Key"] = Sha256Of(TeamB).ToUpperInvariant().Replace("SHA256:", "sha256:", StringComparison.Ordinal),
        ["BatchScoring:Api:Clients:3:Tenant"] = "team-b",
        ["BatchScoring:Api:Clients:3:Scopes:0"] = "submit read admin",
    };

    [Fact]
    public async Task Missing_wrong_and_hash_valued_keys_are_401_problems_and_a_missing_scope_is_a_403_problem()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "scopes", ServiceRoles.Api, Ct, KeyConfiguration());
        var model = SampleModels.Mlp([2, 1], seed: 1).Bytes;

        async Task<HttpResponseMessage> Send(HttpMethod method, string path, string? key, HttpContent? content = null, string header = "X-Api-Key")
        {
            var request = new HttpRequestMessage(method, path) { Content = content };
            if (key is not null)
            {
                request.Headers.TryAddWithoutValidation(header, header == "Authorization" ? $"Bearer {key}" : key);
            }

            return await host.Client.SendAsync(request, Ct);
        }

        using (var r = await Send(HttpMethod.Get, "/api/jobs", null))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Unauthorized, "X-Api-Key");
        }

        using (var r = await Send(HttpMethod.Get, "/api/jobs", "not-a-key"))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Unauthorized, "not valid");
        }

        // The configured hash is not itself a key.
        using (var r = await Send(HttpMethod.Get, "/api/jobs", Sha256Of(TeamAAdmin)))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Unauthorized);
        }

        using (var r = await Send(HttpMethod.Post, "/api/models/m/versions", TeamAReader, new ByteArrayContent(model)))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Forbidden, "'admin'");
        }

        using (var r = await Send(HttpMethod.Post, "/api/jobs", TeamAAdmin, JsonContent.Create(new { model = "m" })))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Forbidden, "'submit'", "POST /api/jobs");
        }

        using (var r = await Send(HttpMethod.Post, $"/api/jobs/{Guid.NewGuid()}/cancel", TeamAReader))
        {
            await ProblemAssert.IsProblemAsync(r, HttpStatusCode.Forbidden, "'submit'");
        }

        using (var r = await Send(HttpMethod.Post, "/api/models/m/versions", TeamAAdmin, new ByteArrayContent(model)))
        {
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        }

        using (var r = await Send(HttpMethod.Get, "/api/models", TeamAReader, header: "Authorization"))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        using (var r = await Send(HttpMethod.Get, "/api/models", TeamB))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode); // upper-case hex in the configuration is accepted
        }

        using (var r = await Send(HttpMethod.Post, "/api/models/legacy/versions", LegacyKey, new ByteArrayContent(model)))
        {
            Assert.Equal(HttpStatusCode.Created, r.StatusCode); // a plain key of today's list has every scope
        }

        using (var r = await Send(HttpMethod.Get, "/health/ready", null))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }

    [Fact]
    public async Task A_key_sees_only_its_tenants_jobs_models_and_drift_reports()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "tenants", ServiceRoles.Api, Ct, KeyConfiguration());
        var model = SampleModels.Mlp([2, 1], seed: 1).Bytes;
        var input = await ApiTestData.WriteCsvAsync(host.WorkDir, rows: 20, Ct);

        async Task<(HttpStatusCode Status, string Body)> Send(HttpMethod method, string path, string key, HttpContent? content = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            request.Headers.Add("X-Api-Key", key);
            using var response = await host.Client.SendAsync(request, Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            if (!response.IsSuccessStatusCode)
            {
                // Refusals are problems whatever the tenant.
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }

            return (response.StatusCode, body);
        }

        JsonContent Job(string modelName, string key) => JsonContent.Create(
            new SubmitScoringJob { Model = modelName, Input = input, KeyColumn = "id", Features = ["a", "b"], OutputTable = $"r_{modelName}", IdempotencyKey = key },
            options: ServiceTestHost.Json);

        Assert.Equal(HttpStatusCode.Created, (await Send(HttpMethod.Post, "/api/models/bmodel/versions", TeamB, new ByteArrayContent(model))).Status);
        Assert.Equal(HttpStatusCode.Created, (await Send(HttpMethod.Post, "/api/models/amodel/versions", TeamAAdmin, new ByteArrayContent(model))).Status);

        // Models: another tenant's name is absent, and cannot be taken over.
        var aModels = (await Send(HttpMethod.Get, "/api/models", TeamAReader)).Body;
        Assert.Contains("amodel", aModels, StringComparison.Ordinal);
        Assert.DoesNotContain("bmodel", aModels, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/api/models/bmodel/versions", TeamAReader)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/api/models/bmodel/profile", TeamAReader)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/api/models/bmodel/drift", TeamAReader)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Get, "/api/models/bmodel/aliases/production/history", TeamAReader)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Put, "/api/models/bmodel/aliases/production", TeamAAdmin, JsonContent.Create(new { version = 1 }))).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Post, "/api/models/bmodel/drift/audit", TeamAAdmin, JsonContent.Create(new { }))).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await Send(HttpMethod.Post, "/api/models/bmodel/versions", TeamAAdmin, new ByteArrayContent(model))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/models/bmodel/versions", TeamB)).Status);
        Assert.Single(System.Text.Json.JsonSerializer.Deserialize<List<ModelVersionInfo>>((await Send(HttpMethod.Get, "/api/models/bmodel/versions", TeamB)).Body, ServiceTestHost.Json)!);

        // Jobs: one tenant cannot submit with another's model; ids and lists are per tenant; idempotency keys too.
        var refused = await Send(HttpMethod.Post, "/api/jobs", TeamASubmitter, Job("bmodel", "k1"));
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Contains("'bmodel' is not registered", refused.Body, StringComparison.Ordinal);
        var bJob = await Send(HttpMethod.Post, "/api/jobs", TeamB, Job("bmodel", "k1"));
        Assert.True(bJob.Status == HttpStatusCode.Accepted, bJob.Body);
        var bJobId = System.Text.Json.JsonSerializer.Deserialize<JobStatus>(bJob.Body, ServiceTestHost.Json)!.Id;
        var aJob = await Send(HttpMethod.Post, "/api/jobs", TeamASubmitter, Job("amodel", "k1"));
        Assert.True(aJob.Status == HttpStatusCode.Accepted, aJob.Body); // same key, other tenant: a job of its own
        var aJobId = System.Text.Json.JsonSerializer.Deserialize<JobStatus>(aJob.Body, ServiceTestHost.Json)!.Id;
        Assert.NotEqual(aJobId, bJobId);

        var missing = await Send(HttpMethod.Get, $"/api/jobs/{bJobId}", TeamAReader);
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Contains($"There is no job {bJobId}", missing.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Post, $"/api/jobs/{bJobId}/cancel", TeamASubmitter)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Send(HttpMethod.Post, $"/api/jobs/{bJobId}/retry", TeamASubmitter)).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, $"/api/jobs/{bJobId}", TeamB)).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, $"/api/jobs/{aJobId}", TeamAReader)).Status);

        var aList = System.Text.Json.JsonSerializer.Deserialize<List<JobStatus>>((await Send(HttpMethod.Get, "/api/jobs", TeamAReader)).Body, ServiceTestHost.Json)!;
        Assert.Equal([aJobId], aList.Select(j => j.Id));
        var bList = System.Text.Json.JsonSerializer.Deserialize<List<JobStatus>>((await Send(HttpMethod.Get, "/api/jobs?model=bmodel", TeamB)).Body, ServiceTestHost.Json)!;
        Assert.Equal([bJobId], bList.Select(j => j.Id));
        Assert.Empty(System.Text.Json.JsonSerializer.Deserialize<List<JobStatus>>((await Send(HttpMethod.Get, "/api/jobs", LegacyKey)).Body, ServiceTestHost.Json)!);
    }

    [Fact]
    public async Task A_key_configuration_that_cannot_work_stops_the_service_at_start_up_naming_the_setting()
    {
        var bad = new Dictionary<string, string>
        {
            ["BatchScoring:Api:Clients:0:Key"] = "sha256:abc",
            ["BatchScoring:Api:Clients:0:Tenant"] = "Team A",
            ["BatchScoring:Api:Clients:0:Scopes:0"] = "write",
        };

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => ServiceTestHost.StartAsync(servers, "badkeys", ServiceRoles.Api, Ct, bad));

        Assert.Contains("BatchScoring:Api:Clients:0:Key", error.Message, StringComparison.Ordinal);
        Assert.Contains("BatchScoring:Api:Clients:0:Tenant", error.Message, StringComparison.Ordinal);
        Assert.Contains("BatchScoring:Api:Clients:0:Scopes", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("abc", error.Message.Replace("sha256:", "", StringComparison.Ordinal).Replace("64 hex", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }
}
