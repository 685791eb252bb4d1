using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Cli.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchScoring.IntegrationTests.Observability;

/// <summary>The JSON console format on its own: fields, scopes, and the redaction of what configuration holds as secret.</summary>
public sealed class JsonLogFormatterTests
{
    private const string Password = "pw-hunter2-0b7e";
    private const string ApiKey = "key-4c1d9e77aa";

    [Fact]
    public void A_line_logged_in_a_chunk_scope_has_job_and_chunk_and_masks_secrets_in_message_values_scopes_and_exceptions()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = $"Host=db;Username=scoring;Password={Password}",
            ["BatchScoring:Api:Keys:0"] = ApiKey,
        }).Build();
        using var services = new ServiceCollection()
            .Configure<ServiceLogFormatterOptions>(o => o.Redactor = SecretRedactor.FromConfiguration(configuration))
            .BuildServiceProvider();
        var formatter = new JsonServiceLogFormatter(services.GetRequiredService<IOptionsMonitor<ServiceLogFormatterOptions>>());
        var scopes = new LoggerExternalScopeProvider();
        var jobId = Guid.NewGuid();
        using var chunkScope = scopes.Push(new Dictionary<string, object> { ["JobId"] = jobId, ["ChunkIndex"] = 7 });
        using var leakyScope = scopes.Push(new Dictionary<string, object> { ["Connection"] = $"Password={Password}" });
        var state = new Dictionary<string, object?> { ["Key"] = ApiKey, ["Message"] = "shadowed", ["{OriginalFormat}"] = "key {Key}" };
        var entry = new LogEntry<Dictionary<string, object?>>(
            LogLevel.Warning, "BatchScoring.Test", new EventId(42), state, new InvalidOperationException($"login failed for {Password}"),
            (_, _) => $"retrying with key {ApiKey}");
        using var output = new StringWriter();

        formatter.Write(entry, scopes, output);

        var text = output.ToString();
        Assert.DoesNotContain(Password, text, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var line = JsonDocument.Parse(text).RootElement;
        Assert.Equal("Warning", line.GetProperty("level").GetString());
        Assert.Equal("BatchScoring.Test", line.GetProperty("category").GetString());
        Assert.Equal(42, line.GetProperty("eventId").GetInt32());
        Assert.Equal("retrying with key ***", line.GetProperty("message").GetString());
        Assert.Equal("InvalidOperationException: login failed for ***", line.GetProperty("exception").GetString());
        Assert.Equal(jobId.ToString(), line.GetProperty("jobId").GetString());
        Assert.Equal("7", line.GetProperty("chunkIndex").GetString());
        Assert.Equal("***", line.GetProperty("key").GetString());
        Assert.Equal("shadowed", line.GetProperty("_message").GetString());
        Assert.False(line.TryGetProperty("{OriginalFormat}", out _));
    }
}
