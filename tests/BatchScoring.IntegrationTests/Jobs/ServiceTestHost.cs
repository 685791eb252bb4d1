using System.Net.Http.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// A `batchscore serve` host inside the test process, on its own database and queue prefix, listening on a free
/// loopback port. Also gives the environment a separate worker process needs to join the same deployment.
/// </summary>
public sealed class ServiceTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ServiceTestHost(WebApplication app, HttpClient client, IReadOnlyDictionary<string, string> settings, string workDir)
    {
        _app = app;
        Client = client;
        Settings = settings;
        WorkDir = workDir;
    }

    public HttpClient Client { get; }

    /// <summary>Configuration as key → value (ConnectionStrings:Postgres, BatchScoring:QueuePrefix, ...).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    public string WorkDir { get; }

    public string PostgresConnectionString => Settings["ConnectionStrings:Postgres"];

    public IServiceProvider Services => _app.Services;

    public static async Task<ServiceTestHost> StartAsync(
        ServerFixture servers, string name, ServiceRoles roles, CancellationToken cancellationToken, IDictionary<string, string>? extra = null)
    {
        var database = await servers.CreateDatabaseAsync(name, cancellationToken);
        var workDir = Directory.CreateTempSubdirectory($"bs-{name}-").FullName;
        var settings = new Dictionary<string, string>
        {
            ["ConnectionStrings:Postgres"] = database,
            ["ConnectionStrings:RabbitMq"] = servers.RabbitMqUri,
            ["BatchScoring:ModelStorePath"] = Path.Combine(workDir, "models"),
            ["BatchScoring:QueuePrefix"] = servers.UniqueName(name) + "-",
            ["BatchScoring:ChunkConcurrency"] = "2",
            ["BatchScoring:IntraOpThreads"] = "1",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:MassTransit"] = "Warning",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        var app = ServiceHost.Build(
            new ServeSettings(roles, "http://127.0.0.1:0", Migrate: true),
            configure: c => c.AddInMemoryCollection(settings!));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var client = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) };
        return new ServiceTestHost(app, client, settings, workDir);
    }

    /// <summary>Environment variables for a `batchscore serve` child process joining this deployment.</summary>
    public Dictionary<string, string> ChildEnvironment() =>
        Settings.ToDictionary(kv => kv.Key.Replace(":", "__", StringComparison.Ordinal), kv => kv.Value);

    public async Task<ModelVersionInfo> RegisterModelAsync(string name, byte[] onnx, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(onnx);
        using var response = await Client.PostAsync($"/api/models/{name}/versions", content, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"register failed: {(int)response.StatusCode} {body}");
        return System.Text.Json.JsonSerializer.Deserialize<ModelVersionInfo>(body, Json)!;
    }

    public async Task<(HttpResponseMessage Response, JobStatus? Status, string Body)> SubmitAsync(SubmitScoringJob request, CancellationToken cancellationToken)
    {
        var response = await Client.PostAsJsonAsync("/api/jobs", request, Json, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var status = response.IsSuccessStatusCode ? System.Text.Json.JsonSerializer.Deserialize<JobStatus>(body, Json) : null;
        return (response, status, body);
    }

    /// <summary>Waits until <c>/health/ready</c> answers <paramref name="expected"/> (a private broker stopped or started).</summary>
    public Task WaitForReadinessAsync(System.Net.HttpStatusCode expected, TimeSpan timeout, CancellationToken cancellationToken) =>
        Poll.UntilAsync(
            async () =>
            {
                using var response = await Client.GetAsync("/health/ready", cancellationToken);
                return response.StatusCode == expected;
            },
            timeout, $"/health/ready to answer {(int)expected}", cancellationToken, TimeSpan.FromMilliseconds(200));

    public async Task<JobStatus> GetStatusAsync(Guid id, CancellationToken cancellationToken) =>
        (await Client.GetFromJsonAsync<JobStatus>($"/api/jobs/{id}", Json, cancellationToken))!;

    public async Task<JobStatus> WaitForEndAsync(Guid id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await GetStatusAsync(id, cancellationToken);
            if (status.State is "succeeded" or "failed" or "cancelled")
            {
                return status;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {id} still {status.State} after {timeout}: {status.ChunksDone}/{status.ChunksTotal} chunks");
            await Task.Delay(200, cancellationToken);
        }
    }

    public static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
