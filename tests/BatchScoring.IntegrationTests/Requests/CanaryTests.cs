using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Worker.Requests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Npgsql;

namespace BatchScoring.IntegrationTests.Requests;

/// <summary>
/// Canary splits and warm-up on alias moves, end to end on the shared RabbitMQ and PostgreSQL: requests from a raw AMQP
/// client, alias moves through the HTTP API, every score checked against a separate ONNX Runtime session of the version
/// the answer names.
/// </summary>
public sealed class CanaryTests(ServerFixture servers)
{
    private const int Features = 8;
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Canary_sends_each_key_to_one_version_in_the_configured_share_until_a_plain_move_ends_it()
    {
        const string model = "churn_canary";
        await using var host = await StartAsync("req-canary", new() { ["BatchScoring:Requests:MaxQueueDelayMs"] = "20", ["BatchScoring:Requests:ModelResolutionCacheMs"] = "0" });
        var versions = new Dictionary<int, MlpModel> { [1] = await RegisterAsync(host, model, seed: 3), [2] = await RegisterAsync(host, model, seed: 11) };
        using var rows = new RowsByVersion(model);
        await SetAliasAsync(host, model, "production", new { version = 1, canaryVersion = 2, canaryPercent = 20 });
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        // 1200 keys sent twice, grouped differently: in order, 40 per request; then reversed and interleaved, 30 per request.
        var keys = Enumerable.Range(0, 1200).Select(i => $"cust-{i}").ToList();
        var features = keys.ToDictionary(k => k, FeaturesOf);
        var first = await ScoreAllAsync(client, host, model, keys.Chunk(40).ToList(), features, "a");
        var second = await ScoreAllAsync(client, host, model, keys.AsEnumerable().Reverse().Where((_, i) => i % 2 == 0).Concat(keys.Where((_, i) => i % 2 == 0)).Chunk(30).ToList(), features, "b");

        foreach (var reply in first.Replies.Concat(second.Replies))
        {
            var scored = reply.GetProperty("model");
            Assert.Equal(1, scored.GetProperty("version").GetInt32());
            Assert.Equal(2, scored.GetProperty("canaryVersion").GetInt32());
            Assert.Equal(20, scored.GetProperty("canaryPercent").GetInt32());
            Assert.Equal(ScoreRequestOutcome.Scored, reply.GetProperty("outcome").GetString());
        }

        // Same key, same version, whatever request carried it.
        Assert.All(second.VersionOf, kv => Assert.Equal(first.VersionOf[kv.Key], kv.Value));
        Assert.Equal(keys.Count, first.VersionOf.Count);

        // Share of keys on the canary: binomial(n, p) within 4.5 standard deviations (the hash is fixed: no flakiness).
        var n = keys.Count;
        var onCanary = first.VersionOf.Values.Count(v => v == 2);
        var sd = Math.Sqrt(n * 0.2 * 0.8);
        Assert.InRange(onCanary, (int)Math.Ceiling((n * 0.2) - (4.5 * sd)), (int)Math.Floor((n * 0.2) + (4.5 * sd)));

        // Each score is what the version the answer names computes (separate ONNX Runtime session per version).
        foreach (var (key, (version, score)) in first.Scores.Concat(second.Scores))
        {
            Assert.Equal(Independent(versions[version], features[key]), score, 1e-4f);
        }

        Assert.NotEqual(Independent(versions[1], features[keys[0]]), Independent(versions[2], features[keys[0]])); // the check can tell the versions apart

        // Result rows carry the version too, and the per-version metric counts the same rows.
        var written = await ReadVersionsAsync(host, model);
        Assert.Equal(2 * n, written.Count);
        Assert.All(written, w => Assert.Equal(first.VersionOf[w.Key], w.Version));
        Assert.Equal(2L * onCanary, rows.Scored(2));
        Assert.Equal(2L * (n - onCanary), rows.Scored(1));

        // A plain move ends the canary (here: promotes v2); the history records its start and its end.
        await SetAliasAsync(host, model, "production", new { version = 2 });
        var after = await ScoreAllAsync(client, host, model, keys.Take(100).Chunk(50).ToList(), features, "c");
        Assert.All(after.VersionOf.Values, v => Assert.Equal(2, v));
        Assert.All(after.Replies, r => Assert.False(r.GetProperty("model").TryGetProperty("canaryVersion", out _)));

        var history = await host.Client.GetFromJsonAsync<List<ModelAliasChange>>($"/api/models/{model}/aliases/production/history", ServiceTestHost.Json, Ct);
        Assert.Equal(2, history!.Count);
        Assert.Equal((2, (int?)1, (int?)null, (int?)2), (history[0].Version, history[0].PreviousVersion, history[0].CanaryVersion, history[0].EndedCanaryVersion));
        Assert.Equal((1, (int?)null, (int?)2, (int?)20, (int?)null), (history[1].Version, history[1].PreviousVersion, history[1].CanaryVersion, history[1].CanaryPercent, history[1].EndedCanaryVersion));
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT count(*) FROM scoring.model_alias_canaries");
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task Canary_moves_that_cannot_work_are_refused_with_a_problem()
    {
        const string model = "churn_refused";
        await using var host = await StartAsync("req-canary-bad");
        await RegisterAsync(host, model, seed: 3);
        await RegisterAsync(host, model, seed: 4);
        foreach (var (body, status, text) in new (object, int, string)[]
        {
            (new { version = 1, canaryVersion = 2 }, 400, "canaryPercent"),
            (new { version = 1, canaryVersion = 2, canaryPercent = 100 }, 400, "between 1 and 99"),
            (new { version = 1, canaryVersion = 1, canaryPercent = 10 }, 400, "must differ"),
            (new { version = 1, canaryVersion = 7, canaryPercent = 10 }, 404, "no version 7"),
        })
        {
            using var response = await host.Client.PutAsJsonAsync($"/api/models/{model}/aliases/production", body, Ct);
            var problem = await response.Content.ReadAsStringAsync(Ct);
            Assert.Equal(status, (int)response.StatusCode);
            Assert.Contains(text, problem, StringComparison.Ordinal);
        }

        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT (SELECT count(*) FROM scoring.model_aliases) + (SELECT count(*) FROM scoring.model_alias_canaries)");
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task A_canary_must_fit_the_main_version_and_cannot_be_archived_or_deleted_while_it_runs()
    {
        const string model = "churn_canary_rules";
        await using var host = await StartAsync("req-canary-rules");
        await RegisterAsync(host, model, seed: 5);
        await RegisterAsync(host, model, seed: 6);
        await host.RegisterModelAsync(model, SampleModels.Mlp([Features + 1, 1], seed: 7).Bytes, Ct); // v3 takes one more feature

        using (var refused = await host.Client.PutAsJsonAsync($"/api/models/{model}/aliases/production", new { version = 1, canaryVersion = 3, canaryPercent = 10 }, Ct))
        {
            Assert.Equal(409, (int)refused.StatusCode);
            Assert.Contains("Incompatible signature", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        await SetAliasAsync(host, model, "production", new { version = 1, canaryVersion = 2, canaryPercent = 10 });
        using (var archive = await host.Client.PostAsync($"/api/models/{model}/versions/2/archive", null, Ct))
        {
            Assert.Equal(409, (int)archive.StatusCode);
            Assert.Contains("production (canary)", await archive.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using (var delete = await host.Client.DeleteAsync($"/api/models/{model}/versions/2", Ct))
        {
            Assert.Equal(409, (int)delete.StatusCode);
            Assert.Contains("production (canary)", await delete.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // A plain move ends the canary; then v2 is free to archive.
        await SetAliasAsync(host, model, "production", new { version = 1 });
        using var archived = await host.Client.PostAsync($"/api/models/{model}/versions/2/archive", null, Ct);
        Assert.True(archived.IsSuccessStatusCode, await archived.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Workers_warm_the_version_an_alias_moves_to_before_its_first_request()
    {
        const string model = "churn_warm";

        // Resolutions cached for 10 minutes: only the alias-move notice can switch this worker to the new version.
        await using var host = await StartAsync("req-warm", new() { ["BatchScoring:Requests:ModelResolutionCacheMs"] = "600000" });
        var versions = new Dictionary<int, MlpModel>();
        for (var seed = 1; seed <= 3; seed++)
        {
            versions[seed] = await RegisterAsync(host, model, seed: 20 + seed);
        }

        using var meter = new CacheMeasurements(model);
        var scoring = host.Services.GetRequiredService<RequestScoringService>();
        var cache = host.Services.GetRequiredService<ModelCache>();
        await SetAliasAsync(host, model, "production", new { version = 1 });
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var keys = Enumerable.Range(0, 20).Select(i => $"w-{i}").ToList();
        var features = keys.ToDictionary(k => k, FeaturesOf);
        var before = await ScoreAllAsync(client, host, model, [keys.ToArray()], features, "before");
        Assert.All(before.VersionOf.Values, v => Assert.Equal(1, v));
        Assert.False(cache.IsLoaded(model, 2));

        // Promote v2: the worker loads it and runs its warm-up batch with no request for it.
        var handled = scoring.AliasMovesHandled;
        await SetAliasAsync(host, model, "production", new { version = 2 });
        await WaitUntilAsync(() => scoring.AliasMovesHandled > handled, "the worker acted on the alias move");
        Assert.True(scoring.IsWarm(model, 2));
        Assert.Equal(1L, meter.Count("batchscoring_model_warmups", 2));
        Assert.Equal(1L, meter.Count("batchscoring_model_cache_misses", 2));
        Assert.Equal(1L, meter.Count("batchscoring_model_load_duration", 2));

        var promoted = await ScoreAllAsync(client, host, model, [keys.ToArray()], features, "after");
        Assert.All(promoted.VersionOf.Values, v => Assert.Equal(2, v));
        foreach (var (key, (version, score)) in promoted.Scores)
        {
            Assert.Equal(Independent(versions[version], features[key]), score, 1e-4f);
        }

        // The first request on v2 found it loaded: no load on the request path.
        Assert.Equal(1L, meter.Count("batchscoring_model_cache_misses", 2));
        Assert.True(meter.Count("batchscoring_model_cache_hits", 2) >= 1);

        // A canary move warms the canary version too.
        handled = scoring.AliasMovesHandled;
        await SetAliasAsync(host, model, "production", new { version = 2, canaryVersion = 3, canaryPercent = 50 });
        await WaitUntilAsync(() => scoring.AliasMovesHandled > handled, "the worker acted on the canary move");
        Assert.True(scoring.IsWarm(model, 3));
        Assert.Equal(1L, meter.Count("batchscoring_model_warmups", 3));
        var split = await ScoreAllAsync(client, host, model, [keys.ToArray()], features, "canary");
        Assert.Equal([2, 3], split.VersionOf.Values.Distinct().Order());
        Assert.Equal(1L, meter.Count("batchscoring_model_cache_misses", 3));
    }

    private Task<ServiceTestHost> StartAsync(string name, Dictionary<string, string>? extra = null) =>
        ServiceTestHost.StartAsync(servers, name, ServiceRoles.All, Ct, extra);

    private static async Task<MlpModel> RegisterAsync(ServiceTestHost host, string name, int seed)
    {
        var mlp = SampleModels.Mlp([Features, 16, 1], seed, featureNames: Enumerable.Range(0, Features).Select(i => $"f_{i:D3}").ToArray());
        await host.RegisterModelAsync(name, mlp.Bytes, Ct);
        return mlp;
    }

    private static async Task SetAliasAsync(ServiceTestHost host, string model, string alias, object body)
    {
        using var response = await host.Client.PutAsJsonAsync($"/api/models/{model}/aliases/{alias}", body, Ct);
        Assert.True(response.IsSuccessStatusCode, $"alias move failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    /// <summary>Deterministic features from the key, so a key carries the same row in every request.</summary>
    private static float[] FeaturesOf(string key)
    {
        var seed = 17;
        foreach (var c in key)
        {
            seed = unchecked((seed * 31) + c);
        }

        var random = new Random(seed);
        return Enumerable.Range(0, Features).Select(_ => (float)Math.Round((random.NextDouble() * 4) - 2, 4)).ToArray();
    }

    private sealed record Scored(List<JsonElement> Replies, Dictionary<string, int> VersionOf, List<KeyValuePair<string, (int Version, float Score)>> Scores);

    /// <summary>Sends one request per group (model alias production) and collects the answers' per-row versions and scores.</summary>
    private static async Task<Scored> ScoreAllAsync(
        RawAmqpClient client, ServiceTestHost host, string model, IReadOnlyList<string[]> groups, Dictionary<string, float[]> features, string tag)
    {
        var queue = host.Settings["BatchScoring:QueuePrefix"] + "score-requests";
        for (var i = 0; i < groups.Count; i++)
        {
            var body = new Dictionary<string, object?>
            {
                ["requestId"] = $"{tag}-{i}",
                ["model"] = new Dictionary<string, object?> { ["name"] = model, ["version"] = "production" },
                ["replyTo"] = client.ReplyQueue,
                ["rows"] = groups[i].Select(k => new Dictionary<string, object?>
                {
                    ["key"] = k,
                    ["features"] = Enumerable.Range(0, Features).ToDictionary(f => $"f_{f:D3}", f => (object?)features[k][f]),
                }).ToList(),
            };
            await client.PublishAsync(queue, JsonSerializer.Serialize(body), Ct);
        }

        var replies = (await client.ReceiveAsync(groups.Count, ReplyTimeout, Ct)).Select(r => r.Body).ToList();
        var versionOf = new Dictionary<string, int>();
        var scores = new List<KeyValuePair<string, (int, float)>>();
        foreach (var reply in replies)
        {
            Assert.Equal(ScoreRequestOutcome.Scored, reply.GetProperty("outcome").GetString());
            foreach (var row in reply.GetProperty("scores").EnumerateArray())
            {
                var key = row.GetProperty("key").GetString()!;
                var version = row.GetProperty("version").GetInt32();
                Assert.True(versionOf.TryAdd(key, version), $"key {key} answered twice in one round");
                scores.Add(new(key, (version, row.GetProperty("outputs").GetProperty("score").GetSingle())));
            }
        }

        Assert.Equal(groups.Sum(g => g.Length), versionOf.Count);
        return new Scored(replies, versionOf, scores);
    }

    /// <summary>The score of one row from a fresh ONNX Runtime session on the version's bytes (not the service's code).</summary>
    private static float Independent(MlpModel model, float[] x)
    {
        var session = s_sessions.GetOrAdd(model, m => new InferenceSession(m.Bytes));
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(model.InputName, new DenseTensor<float>(x, [1, Features]))]);
        return results.First(r => r.Name == "score").AsEnumerable<float>().First();
    }

    private static readonly ConcurrentDictionary<MlpModel, InferenceSession> s_sessions = new();

    private static async Task<List<(string Key, int Version)>> ReadVersionsAsync(ServiceTestHost host, string model)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand($"SELECT row_key, model_version FROM scoring.request_results_{model}");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<(string, int)>();
        while (await reader.ReadAsync(Ct))
        {
            rows.Add((reader.GetString(0), reader.GetInt32(1)));
        }

        return rows;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not reached within 30 s: {what}");
            await Task.Delay(50, Ct);
        }
    }

    /// <summary>Measurements of the BatchScoring meter for one model (other tests share the static instruments).</summary>
    private sealed class CacheMeasurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Instrument, int Version, double Value)> _seen = new();

        public CacheMeasurements(string model)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ScoringMetrics.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(model, instrument, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(model, instrument, value, tags));
            _listener.Start();
        }

        /// <summary>Measurements (for a histogram) or the sum (for a counter) of the instrument for the version.</summary>
        public long Count(string instrument, int version) => instrument.EndsWith("_duration", StringComparison.Ordinal)
            ? _seen.Count(s => s.Instrument == instrument && s.Version == version)
            : (long)_seen.Where(s => s.Instrument == instrument && s.Version == version).Sum(s => s.Value);

        private void Record(string model, Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? name = null;
            var version = 0;
            foreach (var (key, tag) in tags)
            {
                if (key == "model")
                {
                    name = tag as string;
                }
                else if (key == "version")
                {
                    version = Convert.ToInt32(tag, CultureInfo.InvariantCulture);
                }
            }

            if (name == model)
            {
                _seen.Enqueue((instrument.Name, version, value));
            }
        }

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>Rows scored per version of one model, from the batchscoring_request_rows counter.</summary>
    private sealed class RowsByVersion(string model) : IDisposable
    {
        private readonly CacheMeasurements _measurements = new(model);

        public long Scored(int version) => _measurements.Count("batchscoring_request_rows", version);

        public void Dispose() => _measurements.Dispose();
    }
}
