using System.Text.Json;
using BatchScoring.Cli.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Npgsql;
using RabbitMQ.Client;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// Job events as a subscriber sees them: an exclusive queue bound to the MassTransit exchanges of
/// ScoringJobCompleted and ScoringJobFailed. Other test runs publish there too, so events are looked up by job id.
/// </summary>
internal sealed class JobEventProbe : IAsyncDisposable
{
    private static readonly string[] MessageTypes = ["BatchScoring.Contracts:ScoringJobCompleted", "BatchScoring.Contracts:ScoringJobFailed"];
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly string _queue;
    private readonly List<(string Type, JsonElement Message, string? MessageId)> _seen = [];

    private JobEventProbe(IConnection connection, IChannel channel, string queue)
    {
        _connection = connection;
        _channel = channel;
        _queue = queue;
    }

    public static async Task<JobEventProbe> StartAsync(string rabbitUri, CancellationToken cancellationToken)
    {
        var connection = await new ConnectionFactory { Uri = new Uri(rabbitUri) }.CreateConnectionAsync(cancellationToken);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var queue = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
        foreach (var type in MessageTypes)
        {
            await channel.ExchangeDeclareAsync(type, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.QueueBindAsync(queue.QueueName, type, "", cancellationToken: cancellationToken);
        }

        return new JobEventProbe(connection, channel, queue.QueueName);
    }

    /// <summary>Events ("ScoringJobCompleted"/"ScoringJobFailed") of one job received so far, after draining the queue.</summary>
    public async Task<IReadOnlyList<(string Type, JsonElement Message)>> EventsOfAsync(Guid jobId, CancellationToken cancellationToken)
    {
        while (await _channel.BasicGetAsync(_queue, autoAck: true, cancellationToken) is { } delivery)
        {
            using var envelope = JsonDocument.Parse(delivery.Body);
            var type = envelope.RootElement.GetProperty("messageType")[0].GetString()!.Split(':')[^1];
            var messageId = envelope.RootElement.TryGetProperty("messageId", out var id) ? id.GetString() : null;
            _seen.Add((type, envelope.RootElement.GetProperty("message").Clone(), messageId));
        }

        return _seen.Where(e => e.Message.GetProperty("jobId").GetGuid() == jobId).Select(e => (e.Type, e.Message)).ToArray();
    }

    /// <summary>The envelope message ids of the job's events received so far, in order.</summary>
    public async Task<IReadOnlyList<string?>> MessageIdsOfAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await EventsOfAsync(jobId, cancellationToken);
        return _seen.Where(e => e.Message.GetProperty("jobId").GetGuid() == jobId).Select(e => e.MessageId).ToArray();
    }

    /// <summary>Waits for the job's first event; fails after <paramref name="timeout"/>.</summary>
    public async Task<(string Type, JsonElement Message)> WaitAsync(Guid jobId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if ((await EventsOfAsync(jobId, cancellationToken)) is [var first, ..])
            {
                return first;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no ScoringJobCompleted/ScoringJobFailed for job {jobId} within {timeout}");
            await Task.Delay(100, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}

/// <summary>Helpers shared by the job failure tests.</summary>
internal static class JobFailureSupport
{
    /// <summary>Starts more roles (e.g. a worker) in this process, joining <paramref name="host"/>'s database and queues.</summary>
    public static async Task<WebApplication> StartRolesAsync(ServiceTestHost host, ServiceRoles roles, CancellationToken cancellationToken)
    {
        var app = ServiceHost.Build(
            new ServeSettings(roles, "http://127.0.0.1:0", Migrate: false),
            configure: c => c.AddInMemoryCollection(host.Settings!));
        await app.StartAsync(cancellationToken);
        return app;
    }

    public static async Task StopAsync(WebApplication app)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    public static async Task<long> ScalarAsync(string connectionString, string sql, Guid id, CancellationToken cancellationToken)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Records every chunk of the job as scored, the way a worker's commit does, without finishing the job.</summary>
    public static async Task EndEveryChunkAsync(ServiceTestHost host, Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var batch = db.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "UPDATE scoring.chunks SET state = 'succeeded', scored_rows = row_count, finished_at = now() WHERE job_id = $1"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "UPDATE scoring.jobs SET chunks_done = chunks_total, scored_rows = total_rows, updated_at = now() WHERE id = $1"));
        foreach (var command in batch.BatchCommands)
        {
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        }

        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>When the broker confirmed the job's ended event, as the job row records it (null: not confirmed).</summary>
    public static async Task<DateTimeOffset?> EndedEventSentAtAsync(ServiceTestHost host, Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand("SELECT ended_event_sent_at FROM scoring.jobs WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        return await command.ExecuteScalarAsync(cancellationToken) is DateTime at ? new DateTimeOffset(at, TimeSpan.Zero) : null;
    }

    /// <summary>The finisher records the broker's confirmation right after the event went out.</summary>
    public static async Task WaitForEndedEventSentAsync(ServiceTestHost host, Guid jobId, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await EndedEventSentAtAsync(host, jobId, cancellationToken) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId}: its ended event was never recorded as confirmed");
            await Task.Delay(50, cancellationToken);
        }
    }

    public static async Task ExecuteAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
