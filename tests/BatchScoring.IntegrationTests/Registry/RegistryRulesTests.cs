using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using BatchScoring.IntegrationTests.Cli;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Api;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Worker.Requests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.IntegrationTests.Registry;

/// <summary>The registry rules of docs/model-registry.md over HTTP, against real PostgreSQL (and RabbitMQ where a job runs).</summary>
public sealed class RegistryRulesTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<HttpResponseMessage> PutAliasAsync(ServiceTestHost host, string model, string alias, int version, bool force = false) =>
        await host.Client.PutAsJsonAsync($"/api/models/{model}/aliases/{alias}", new { version, force }, Ct);

    private static async Task<int?> AliasTargetAsync(ServiceTestHost host, string model, string alias) =>
        (await host.Client.GetFromJsonAsync<List<ModelVersionInfo>>($"/api/models/{model}/versions", ServiceTestHost.Json, Ct))!
            .SingleOrDefault(v => v.Aliases.Contains(alias))?.Version;

    private static async Task<List<ModelAliasChange>> HistoryAsync(ServiceTestHost host, string model, string alias) =>
        (await host.Client.GetFromJsonAsync<List<ModelAliasChange>>($"/api/models/{model}/aliases/{alias}/history", ServiceTestHost.Json, Ct))!;

    [Fact]
    public async Task Incompatible_alias_moves_and_rollbacks_are_refused_with_a_diff_unless_forced_and_the_force_is_recorded()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "aliassafe", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 1).Bytes, Ct);                        // v1
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 2).Bytes, Ct);                        // v2: same signature
        await host.RegisterModelAsync("churn", SampleModels.Mlp([5, 1], seed: 3).Bytes, Ct);                        // v3: 5 inputs
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 4, outputName: "probability").Bytes, Ct); // v4: output renamed

        using (var create = await PutAliasAsync(host, "churn", "production", 1))
        {
            Assert.Equal(HttpStatusCode.OK, create.StatusCode);
        }

        using (var compatible = await PutAliasAsync(host, "churn", "production", 2))
        {
            Assert.Equal(HttpStatusCode.OK, compatible.StatusCode);
        }

        using (var wider = await PutAliasAsync(host, "churn", "production", 3))
        {
            var problem = await ProblemAssert.IsProblemAsync(wider, HttpStatusCode.Conflict, "points at v2", "input 'features' shape [N, 4] → [N, 5]", "force");
            Assert.Equal("Incompatible signature", problem.GetProperty("title").GetString());
            Assert.Equal((2, 3), (problem.GetProperty("fromVersion").GetInt32(), problem.GetProperty("toVersion").GetInt32()));
            var diff = problem.GetProperty("diff");
            AssertKeysDeclared(diff, LoadSchema("signature-diff.schema.json"));
            Assert.False(diff.GetProperty("compatible").GetBoolean());
            var change = diff.GetProperty("inputs").GetProperty("changed").EnumerateArray().Single();
            Assert.Equal("features", change.GetProperty("name").GetString());
            Assert.Equal([-1L, 4L], change.GetProperty("from").GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal([-1L, 5L], change.GetProperty("to").GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
            Assert.True(change.GetProperty("breaking").GetBoolean());
        }

        using (var renamed = await PutAliasAsync(host, "churn", "production", 4))
        {
            var diff = (await ProblemAssert.IsProblemAsync(renamed, HttpStatusCode.Conflict, "output 'score' removed", "output 'probability' added")).GetProperty("diff");
            Assert.Equal(["score"], diff.GetProperty("outputs").GetProperty("removed").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
            Assert.Equal(["probability"], diff.GetProperty("outputs").GetProperty("added").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        }

        Assert.Equal(2, await AliasTargetAsync(host, "churn", "production"));
        Assert.Equal(2, (await HistoryAsync(host, "churn", "production")).Count);

        using (var forced = await PutAliasAsync(host, "churn", "production", 3, force: true))
        {
            Assert.Equal(HttpStatusCode.OK, forced.StatusCode);
        }

        var history = await HistoryAsync(host, "churn", "production");
        Assert.Equal([(3, (int?)2, true), (2, 1, false), (1, null, false)], history.Select(h => (h.Version, h.PreviousVersion, h.Forced)));
        Assert.All(history, h => Assert.Equal("local", h.ChangedBy));

        // Rolling back 3 → 2 crosses the same incompatibility, the other way.
        using (var rollback = await host.Client.PostAsync("/api/models/churn/aliases/production/rollback", null, Ct))
        {
            await ProblemAssert.IsProblemAsync(rollback, HttpStatusCode.Conflict, "input 'features' shape [N, 5] → [N, 4]");
        }

        Assert.Equal(3, await AliasTargetAsync(host, "churn", "production"));
        using (var forcedRollback = await host.Client.PostAsJsonAsync("/api/models/churn/aliases/production/rollback", new { force = true }, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, forcedRollback.StatusCode);
        }

        Assert.Equal(2, await AliasTargetAsync(host, "churn", "production"));
        Assert.Equal((2, (int?)3, true), (await HistoryAsync(host, "churn", "production")).Select(h => (h.Version, h.PreviousVersion, h.Forced)).First());

        // The CLI: one line and exit 1; --json also prints the diff on stdout.
        var api = host.Client.BaseAddress!.ToString();
        var refused = await CliProcess.RunAsync(Ct, "models", "alias", "--name", "churn", "--alias", "production", "--version", "3", "--api", api);
        CliAssert.OneLineError(1, refused, "input 'features' shape [N, 4] → [N, 5]");
        var refusedJson = await CliProcess.RunAsync(Ct, "models", "alias", "--name", "churn", "--alias", "production", "--version", "4", "--json", "--api", api);
        CliAssert.OneLineError(1, refusedJson, "Incompatible signature");
        var printed = JsonDocument.Parse(refusedJson.Stdout).RootElement;
        Assert.Equal(["score"], printed.GetProperty("diff").GetProperty("outputs").GetProperty("removed").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        var forcedCli = await CliProcess.RunAsync(Ct, "models", "alias", "--name", "churn", "--alias", "production", "--version", "4", "--force", "--api", api);
        Assert.True(forcedCli.Exit == 0, forcedCli.Stderr);
        Assert.Equal(4, await AliasTargetAsync(host, "churn", "production"));
        var historyText = await CliProcess.RunAsync(Ct, "models", "history", "--name", "churn", "--alias", "production", "--api", api);
        Assert.Contains("production → v4 (was v2) by local FORCED", historyText.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_archived_version_is_kept_for_lineage_but_refused_at_submit_and_as_an_alias_target()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "archive", ServiceRoles.Api | ServiceRoles.Worker, Ct);
        await host.RegisterModelAsync("churn", SampleModels.Mlp([2, 1], seed: 1).Bytes, Ct); // v1
        await host.RegisterModelAsync("churn", SampleModels.Mlp([2, 1], seed: 2).Bytes, Ct); // v2
        var csv = Path.Combine(host.WorkDir, "in.csv");
        await File.WriteAllTextAsync(csv, "id,a,b\n1,0.1,0.2\n2,0.3,0.4\n3,0.5,0.6\n", Ct);
        SubmitScoringJob Job(string version) => new() { Model = "churn", ModelVersion = version, Input = csv, KeyColumn = "id", OutputTable = "archive_results", Features = ["a", "b"] };

        var (_, oldJob, body) = await host.SubmitAsync(Job("2"), Ct);
        Assert.True(oldJob is not null, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(oldJob!.Id, TimeSpan.FromMinutes(1), Ct)).State);
        using (var alias = await PutAliasAsync(host, "churn", "production", 1))
        {
            Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        }

        using (var busy = await host.Client.PostAsync("/api/models/churn/versions/1/archive", null, Ct))
        {
            await ProblemAssert.IsProblemAsync(busy, HttpStatusCode.Conflict, "v1 is what alias 'production' points at", "Nothing was archived");
        }

        using (var archive = await host.Client.PostAsync("/api/models/churn/versions/2/archive", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, archive.StatusCode);
            Assert.NotNull((await archive.Content.ReadFromJsonAsync<ModelVersionInfo>(ServiceTestHost.Json, Ct))!.ArchivedAt);
        }

        // Refused at submit, naming the version; not an alias target; "latest" skips it.
        var (refused, _, refusedBody) = await host.SubmitAsync(Job("2"), Ct);
        using (refused)
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("Model 'churn' v2 is archived; it cannot be submitted", refusedBody, StringComparison.Ordinal);
        }

        using (var aliasToArchived = await PutAliasAsync(host, "churn", "staging", 2))
        {
            await ProblemAssert.IsProblemAsync(aliasToArchived, HttpStatusCode.Conflict, "v2 is archived");
        }

        var store = host.Services.GetRequiredService<ModelStore>();
        Assert.Equal(1, (await store.ResolveModelAsync("churn", "latest", Ct))!.Version);

        // Score requests for it are answered rejected, naming the version.
        var answer = await host.Services.GetRequiredService<RequestScoringService>().ScoreAsync(
            new ScoreRequest
            {
                RequestId = "archived-1",
                Model = new ScoreRequestModel { Name = "churn", Version = "2" },
                Rows = [new ScoreRequestRow { Key = "1", Features = new Dictionary<string, object?> { ["a"] = 0.1, ["b"] = 0.2 } }],
            },
            Ct);
        Assert.Equal((ScoreRequestOutcome.Rejected, 2), (answer.Outcome, answer.Model.Version));
        Assert.Contains("Model 'churn' v2 is archived; it does not score requests", answer.Error, StringComparison.Ordinal);

        // Kept for lineage: listed (marked archived), the old job still names it.
        var versions = (await host.Client.GetFromJsonAsync<List<ModelVersionInfo>>("/api/models/churn/versions", ServiceTestHost.Json, Ct))!;
        Assert.Equal([(1, false), (2, true)], versions.Select(v => (v.Version, v.ArchivedAt is not null)));
        var old = await host.GetStatusAsync(oldJob.Id, Ct);
        Assert.Equal((2, "succeeded"), (old.ModelVersion, old.State));

        // The CLI: list marks it; unarchive makes it usable again.
        var api = host.Client.BaseAddress!.ToString();
        Assert.Contains("(archived)", (await CliProcess.RunAsync(Ct, "models", "list", "--api", api)).Stdout, StringComparison.Ordinal);
        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "models", "archive", "--name", "churn", "--version", "1", "--api", api), "alias 'production'");
        var unarchive = await CliProcess.RunAsync(Ct, "models", "unarchive", "--name", "churn", "--version", "2", "--api", api);
        Assert.True(unarchive.Exit == 0, unarchive.Stderr);
        Assert.Contains("unarchived churn@2", unarchive.Stdout, StringComparison.Ordinal);
        var (again, againJob, againBody) = await host.SubmitAsync(Job("2"), Ct);
        using (again)
        {
            Assert.True(againJob is not null, againBody);
        }
    }

    [Fact]
    public async Task Delete_is_refused_while_in_use_and_removes_the_file_with_the_last_version_that_has_its_bytes()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "delete", ServiceRoles.Api, Ct);
        var a = SampleModels.Mlp([4, 1], seed: 1).Bytes;
        var b = SampleModels.Mlp([4, 1], seed: 2).Bytes;
        var v1 = await host.RegisterModelAsync("churn", a, Ct);
        var v2 = await host.RegisterModelAsync("churn", b, Ct);
        await host.RegisterModelAsync("twin", b, Ct); // the same bytes under another name share the stored file
        var fileA = Path.Combine(host.Settings["BatchScoring:ModelStorePath"], $"{Hash(a)}.onnx");
        var fileB = Path.Combine(host.Settings["BatchScoring:ModelStorePath"], $"{Hash(b)}.onnx");
        Assert.True(File.Exists(fileA) && File.Exists(fileB));
        Assert.Equal((Hash(a), Hash(b)), (v1.Sha256, v2.Sha256));

        using (var alias = await PutAliasAsync(host, "churn", "production", 1))
        {
            Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        }

        using (var aliased = await host.Client.DeleteAsync("/api/models/churn/versions/1", Ct))
        {
            await ProblemAssert.IsProblemAsync(aliased, HttpStatusCode.Conflict, "v1 is in use by alias 'production'", "Nothing was deleted");
        }

        // A queued job on v2 (as the submitter records it; no worker here takes it).
        var jobId = Guid.NewGuid();
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await ExecuteAsync(db, $"""
            INSERT INTO scoring.jobs (id, model_name, model_version, model_sha256, input_uri, input_format, key_column, batch_size, chunk_size)
            VALUES ('{jobId}', 'churn', 2, '{v2.Sha256}', '/data/in.csv', 'csv', 'id', 100, 100)
            """);
        using (var queued = await host.Client.DeleteAsync("/api/models/churn/versions/2", Ct))
        {
            await ProblemAssert.IsProblemAsync(queued, HttpStatusCode.Conflict, $"queued job {jobId}");
        }

        await ExecuteAsync(db, $"UPDATE scoring.jobs SET state = 'running' WHERE id = '{jobId}'");
        using (var running = await host.Client.DeleteAsync("/api/models/churn/versions/2", Ct))
        {
            await ProblemAssert.IsProblemAsync(running, HttpStatusCode.Conflict, $"running job {jobId}");
        }

        await ExecuteAsync(db, $"UPDATE scoring.jobs SET state = 'succeeded' WHERE id = '{jobId}'");
        using (var deleted = await host.Client.DeleteAsync("/api/models/churn/versions/2", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
            Assert.Equal(new ModelVersionDeleted("churn", 2, v2.Sha256, FileRemoved: false), await deleted.Content.ReadFromJsonAsync<ModelVersionDeleted>(ServiceTestHost.Json, Ct));
        }

        Assert.True(File.Exists(fileB), "twin v1 still has these bytes");
        var finished = await host.GetStatusAsync(jobId, Ct);
        Assert.Equal((2, v2.Sha256), (finished.ModelVersion, finished.ModelSha256));

        var api = host.Client.BaseAddress!.ToString();
        var twin = await CliProcess.RunAsync(Ct, "models", "delete", "--name", "twin", "--version", "1", "--json", "--api", api);
        Assert.True(twin.Exit == 0, twin.Stderr);
        Assert.True(JsonDocument.Parse(twin.Stdout).RootElement.GetProperty("fileRemoved").GetBoolean());
        Assert.False(File.Exists(fileB));

        CliAssert.OneLineError(1, await CliProcess.RunAsync(Ct, "models", "delete", "--name", "churn", "--version", "1", "--api", api), "alias 'production'");
        Assert.True(File.Exists(fileA));

        // Numbers are not reused: the next version of churn is 3 even though 2 is gone.
        var v3 = await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 3).Bytes, Ct);
        Assert.Equal(3, v3.Version);
        using (var missing = await host.Client.DeleteAsync("/api/models/churn/versions/2", Ct))
        {
            await ProblemAssert.IsProblemAsync(missing, HttpStatusCode.NotFound, "has no version 2");
        }
    }

    [Fact]
    public async Task A_registered_use_hook_such_as_a_schedule_refuses_the_delete()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "deletehook", ServiceRoles.Api, Ct);
        var v1 = await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 1], seed: 1).Bytes, Ct);
        var registry = new ModelRegistry(
            host.Services.GetRequiredService<ModelStore>(),
            host.Services.GetRequiredService<IOptions<BatchScoringOptions>>(),
            [new NamedUse("churn", 1, "schedule 'nightly-churn'")],
            NullLogger<ModelRegistry>.Instance);

        var refused = await Assert.ThrowsAsync<ModelVersionInUseException>(() => registry.DeleteVersionAsync("churn", 1, Tenants.Default, "test", Ct));

        Assert.Contains("schedule 'nightly-churn'", refused.Message, StringComparison.Ordinal);
        Assert.NotNull(await host.Services.GetRequiredService<ModelStore>().GetModelVersionAsync("churn", 1, Ct));
        var deleted = await host.Services.GetRequiredService<ModelRegistry>().DeleteVersionAsync("churn", 1, Tenants.Default, "test", Ct);
        Assert.True(deleted.FileRemoved);
        Assert.Equal(v1.Sha256, deleted.Sha256);
    }

    [Fact]
    public async Task Identical_bytes_registered_again_give_the_existing_version_with_200()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "samebytes", ServiceRoles.Api, Ct);
        var bytes = SampleModels.Mlp([4, 1], seed: 1).Bytes;

        async Task<(HttpStatusCode Status, JsonElement Body)> RegisterAsync(string name)
        {
            using var response = await host.Client.PostAsync($"/api/models/{name}/versions", new ByteArrayContent(bytes), Ct);
            return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone());
        }

        var (firstStatus, first) = await RegisterAsync("churn");
        Assert.Equal(HttpStatusCode.Created, firstStatus);
        Assert.False(first.GetProperty("existing").GetBoolean());

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => RegisterAsync("churn")));
        Assert.All(concurrent, r =>
        {
            Assert.Equal(HttpStatusCode.OK, r.Status);
            Assert.True(r.Body.GetProperty("existing").GetBoolean());
            Assert.Equal(1, r.Body.GetProperty("version").GetInt32());
            Assert.Contains("already registered as churn@1", r.Body.GetProperty("message").GetString(), StringComparison.Ordinal);
        });

        var (otherStatus, other) = await RegisterAsync("other");
        Assert.Equal((HttpStatusCode.Created, 1), (otherStatus, other.GetProperty("version").GetInt32()));
        var versions = (await host.Client.GetFromJsonAsync<List<ModelVersionInfo>>("/api/models/churn/versions", ServiceTestHost.Json, Ct))!;
        Assert.Equal([1], versions.Select(v => v.Version));

        var file = Path.Combine(host.WorkDir, "churn.onnx");
        await File.WriteAllBytesAsync(file, bytes, Ct);
        var cli = await CliProcess.RunAsync(Ct, "models", "register", "--name", "churn", "--file", file, "--api", host.Client.BaseAddress!.ToString());
        Assert.True(cli.Exit == 0, cli.Stderr);
        Assert.StartsWith("already registered as churn@1", cli.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Feature_names_are_a_list_in_the_signature_of_the_api_and_the_cli()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "featnames", ServiceRoles.Api, Ct);
        string[] names = ["age", "tenure", "monthly_spend"];
        await host.RegisterModelAsync("churn", SampleModels.Mlp([3, 1], seed: 1, featureNames: names).Bytes, Ct);

        var raw = await host.Client.GetStringAsync("/api/models/churn/versions", Ct);
        var version = JsonDocument.Parse(raw).RootElement[0];
        var schema = LoadSchema("model-version.schema.json");
        AssertKeysDeclared(version, schema);
        AssertKeysDeclared(version.GetProperty("signature"), schema.GetProperty("$defs").GetProperty("signature"));
        AssertKeysDeclared(version.GetProperty("signature").GetProperty("inputs")[0], schema.GetProperty("$defs").GetProperty("tensor"));
        var signature = version.GetProperty("signature");
        Assert.Equal(JsonValueKind.Object, signature.ValueKind);
        Assert.Equal(names, signature.GetProperty("featureNames").EnumerateArray().Select(n => n.GetString()));
        Assert.False(signature.GetProperty("metadata").TryGetProperty("feature_names", out _));
        var input = signature.GetProperty("inputs")[0];
        Assert.Equal(("features", "tensor", "float"), (input.GetProperty("name").GetString(), input.GetProperty("kind").GetString(), input.GetProperty("elementType").GetString()));
        Assert.Equal([-1L, 3L], input.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));

        var api = host.Client.BaseAddress!.ToString();
        var json = await CliProcess.RunAsync(Ct, "models", "list", "--json", "--api", api);
        Assert.Equal(names, JsonDocument.Parse(json.Stdout).RootElement[0].GetProperty("signature").GetProperty("featureNames").EnumerateArray().Select(n => n.GetString()));
        var table = await CliProcess.RunAsync(Ct, "models", "list", "--api", api);
        Assert.Contains("features: float[N, 3] → score: float[N, 1]  features [age, tenure, monthly_spend]", table.Stdout, StringComparison.Ordinal);
    }

    private static JsonElement LoadSchema(string file) =>
        JsonDocument.Parse(File.ReadAllText(RepositoryPaths.FindUpwards(Path.Combine("schemas", file))!)).RootElement.Clone();

    /// <summary>The schema in schemas/ follows the contract: every property written is declared, every required one is written.</summary>
    private static void AssertKeysDeclared(JsonElement value, JsonElement schema)
    {
        var declared = schema.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var written = value.EnumerateObject().Select(p => p.Name).ToList();
        Assert.All(written, name => Assert.Contains(name, declared));
        Assert.All(schema.GetProperty("required").EnumerateArray().Select(r => r.GetString()!), name => Assert.Contains(name, written));
    }

    private static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private sealed class NamedUse(string model, int version, string use) : IModelVersionUse
    {
        public Task<IReadOnlyList<string>> FindAsync(string modelName, int v, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(modelName == model && v == version ? [use] : []);
    }
}
