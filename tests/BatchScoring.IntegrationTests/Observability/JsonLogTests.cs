using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Observability;

/// <summary>`serve` with JSON console logs, as a log pipeline reads them from a real process's standard output.</summary>
public sealed class JsonLogTests(ServerFixture servers)
{
    private const string ApiKey = "obs-key-7f3c9d2e41";
    private static readonly string[] Features = ["f_000", "f_001", "f_002"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Json_lines_carry_job_chunk_and_trace_and_never_the_database_password_or_api_key()
    {
        await using var collector = await OtlpReceiver.StartAsync(Ct);
        var database = new NpgsqlConnectionStringBuilder(await servers.CreateDatabaseAsync("jsonlogs", Ct));
        // The test servers trust loopback, so any password works; a server that checks it gave us the real one.
        database.Password ??= "pw-9c1e5a7b3d";
        var password = database.Password;
        var workDir = Directory.CreateTempSubdirectory("bs-jsonlogs-").FullName;
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = database.ConnectionString,
            ["ConnectionStrings__RabbitMq"] = servers.RabbitMqUri,
            ["BatchScoring__ModelStorePath"] = Path.Combine(workDir, "models"),
            ["BatchScoring__QueuePrefix"] = servers.UniqueName("jsonlogs") + "-",
            ["BatchScoring__LogFormat"] = "json",
            ["BatchScoring__Api__Keys__0"] = ApiKey,
            ["Logging__LogLevel__Default"] = "Debug",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Information",
        };
        foreach (var (key, value) in collector.Settings("batchscoring"))
        {
            environment[key] = value;
        }

        using var serve = ServeProcess.Start("api,worker", environment, "--migrate");
        await serve.WaitForStatusAsync("/health/ready", HttpStatusCode.OK, TimeSpan.FromSeconds(90), Ct);
        // A model upload with Debug logging on a loaded machine outlasts ServeProcess.Http's 10 s.
        using var api = new HttpClient { BaseAddress = new Uri(serve.Url), Timeout = TimeSpan.FromMinutes(2) };
        api.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        using (var upload = new ByteArrayContent(SampleModels.Mlp([Features.Length, 4, 1], seed: 5, featureNames: Features).Bytes))
        using (var registered = await api.PostAsync("/api/models/churn/versions", upload, Ct))
        {
            Assert.True(registered.IsSuccessStatusCode, await registered.Content.ReadAsStringAsync(Ct));
        }

        using var submitted = await api.PostAsJsonAsync("/api/jobs", new SubmitScoringJob
        {
            Model = "churn", Input = WriteCsv(workDir, 3_000), KeyColumn = "id", OutputTable = "scoring.results_churn", ChunkRows = 1_000,
        }, ServiceTestHost.Json, Ct);
        var body = await submitted.Content.ReadAsStringAsync(Ct);
        Assert.True(submitted.StatusCode == HttpStatusCode.Accepted, body);
        var jobId = JsonSerializer.Deserialize<JobStatus>(body, ServiceTestHost.Json)!.Id;
        await Poll.UntilAsync(
            async () => (await api.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", ServiceTestHost.Json, Ct))!.State == "succeeded",
            TimeSpan.FromMinutes(2), "the job to succeed", Ct);

        // Logged inside the chunk that finished the job: the job id, its chunk index, and the chunk's trace.
        JsonElement chunkLine = default;
        await Poll.UntilAsync(
            () => Lines(serve.Output).Any(line =>
            {
                chunkLine = line;
                return line.TryGetProperty("jobId", out var job) && job.GetString() == jobId.ToString()
                    && line.TryGetProperty("chunkIndex", out var chunk) && int.TryParse(chunk.GetString(), CultureInfo.InvariantCulture, out _)
                    && line.GetProperty("category").GetString()!.Contains("JobFinisher", StringComparison.Ordinal);
            }),
            TimeSpan.FromSeconds(10), "a JSON line from the job finisher inside a chunk", Ct);
        var traceId = chunkLine.GetProperty("traceId").GetString()!;
        Assert.Matches("^[0-9a-f]{32}$", traceId);
        Assert.Matches("^[0-9a-f]{16}$", chunkLine.GetProperty("spanId").GetString()!);
        await Poll.UntilAsync(
            () => collector.Spans.Any(s => s.TraceId == traceId && s.Name == "chunk"), TimeSpan.FromSeconds(20), "the chunk span of the logged trace id", Ct);

        var output = serve.Output;
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.All(lines, line => Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(line).RootElement.ValueKind));
        Assert.DoesNotContain(password, output, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, output, StringComparison.Ordinal);
    }

    private static IEnumerable<JsonElement> Lines(string output) => output
        .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Where(line => line.StartsWith('{'))
        .Select(line => JsonDocument.Parse(line).RootElement);

    private static string WriteCsv(string folder, int rows)
    {
        var random = new Random(3);
        var csv = new StringBuilder("id," + string.Join(',', Features) + "\n");
        for (var r = 0; r < rows; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r},{random.NextDouble():R},{random.NextDouble():R},{random.NextDouble():R}\n");
        }

        var path = Path.Combine(folder, "input.csv");
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
