using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Worker.Requests.Transport;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Worker.Requests;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Spectre.Console;

namespace BatchScoring.Benchmarks;

/// <summary>One request-mode run: how many requests of how many rows, with which batching, and what it achieved.</summary>
public sealed record RequestRunResult(
    string Name,
    string Batching,
    int Requests,
    int RowsPerRequest,
    bool WithReply,
    double? TargetRequestsPerSecond,
    double Seconds,
    double RequestsPerSecond,
    double RowsPerSecond,
    double AverageBatchRows,
    double P50Ms,
    double P95Ms,
    double P99Ms,
    int NotScored,
    double AllocatedBytesPerRequest);

public sealed class RequestBenchReport
{
    public required string Model { get; init; }

    public required int Features { get; init; }

    public required int ConsumerConcurrency { get; init; }

    public required string Note { get; init; }

    public List<RequestRunResult> Runs { get; } = [];

    /// <summary>
    /// rows/s with dynamic batching ÷ rows/s with batches of one, single-row requests without a reply address (results
    /// table and event only), medians (target ≥ 8).
    /// </summary>
    public double? SingleRowSpeedup { get; set; }

    /// <summary>The same ratio for single-row requests that ask for a reply (a second broker round trip per request).</summary>
    public double? SingleRowSpeedupWithReply { get; set; }

    /// <summary>rows/s of each single-row max-rate run without reply, dynamic batching (the median is in <see cref="Runs"/>).</summary>
    public List<double> SingleRowDynamicRowsPerSecond { get; } = [];

    /// <summary>rows/s of each single-row max-rate run without reply, batches of one.</summary>
    public List<double> SingleRowBatchOfOneRowsPerSecond { get; } = [];

    /// <summary>rows/s of each single-row max-rate run with reply, dynamic batching.</summary>
    public List<double> SingleRowDynamicWithReplyRowsPerSecond { get; } = [];

    /// <summary>rows/s of each single-row max-rate run with reply, batches of one.</summary>
    public List<double> SingleRowBatchOfOneWithReplyRowsPerSecond { get; } = [];

    public string? Error { get; set; }
}

/// <summary>
/// Request mode under load: a worker (in this process, on a fresh database) consumes queue score-requests; a plain AMQP
/// client publishes pre-serialized JSON requests as fast as it can (or at a fixed rate). Requests without a reply
/// address (the plain case: results table + event) are timed from publish to their rows' <c>scored_at</c> in the
/// results table, and a run ends when the worker has finished (answered and acknowledged) all of them; requests with a
/// reply address are timed from publish to the reply, which the worker sends after the rows are committed. Runs with
/// dynamic batching (the defaults), and with batching disabled (one request per inference call: MaxBatchRows = rows
/// per request, delay 0).
/// </summary>
internal sealed class RequestBenchRunner(string postgresConnectionString, string rabbitMqUri, int requests, int repeats)
{
    private const int Features = 16;
    private const string HalfOfReplyPeak = "single-row, half of the reply peak, reply";
    private const string HalfOfPeak = "single-row, half of the no-reply peak, reply";
    private const string ModelName = "bench_requests";

    private static readonly RequestMeters Meters = new(ModelName);

    public async Task<RequestBenchReport> RunAsync(CancellationToken cancellationToken)
    {
        var defaults = new RequestBatchingOptions();
        var report = new RequestBenchReport
        {
            Model = $"MLP {Features}-64-64-1",
            Features = Features,
            ConsumerConcurrency = defaults.ConsumerConcurrency,
            Note = "worker and publisher share this process and machine; latency = publish → scored_at of the rows (no reply) or → reply received (sent after the commit)",
        };
        var database = $"bench_req_{DateTime.UtcNow:yyyyMMddHHmmss}_{Environment.ProcessId}";
        var connection = await CreateDatabaseAsync(database, cancellationToken);
        var model = SampleModels.Mlp([Features, 64, 64, 1], seed: 7, featureNames: Enumerable.Range(0, Features).Select(i => $"f_{i:D3}").ToArray());
        try
        {
            var batching = $"dynamic: ≤ {defaults.MaxBatchRows} rows, ≤ {defaults.MaxQueueDelayMs} ms";
            RequestRunResult peak, peakWithReply;
            await using (var host = await BenchHost.StartAsync(connection, rabbitMqUri, model.Bytes, "dyn", new(), cancellationToken))
            {
                await WarmUpAsync(host, batching, cancellationToken);
                peak = await MedianRunAsync(host, batching, withReply: false, report.SingleRowDynamicRowsPerSecond, cancellationToken);
                peakWithReply = await MedianRunAsync(host, batching, withReply: true, report.SingleRowDynamicWithReplyRowsPerSecond, cancellationToken);
                report.Runs.Add(peak);
                report.Runs.Add(peakWithReply);
                report.Runs.Add(await host.RunAsync("100-row, max rate", batching, requests, 100, withReply: false, null, cancellationToken));

                // The latency target: replies at half the peak rate with replies, timed to the reply. The stricter load,
                // half the peak without replies (a reply is a second broker round trip, so that is ~80 % of what the
                // reply path carries), is run and printed too.
                report.Runs.Add(await host.RunAsync(HalfOfReplyPeak, batching, requests, 1, withReply: true, peakWithReply.RequestsPerSecond / 2, cancellationToken));
                report.Runs.Add(await host.RunAsync(HalfOfPeak, batching, requests, 1, withReply: true, peak.RequestsPerSecond / 2, cancellationToken));
            }

            await using (var host = await BenchHost.StartAsync(connection, rabbitMqUri, model.Bytes, "one", new() { ["MaxBatchRows"] = "1", ["MaxQueueDelayMs"] = "0" }, cancellationToken))
            {
                const string off = "off: 1 request per call";
                await WarmUpAsync(host, off, cancellationToken);
                var single = await MedianRunAsync(host, off, withReply: false, report.SingleRowBatchOfOneRowsPerSecond, cancellationToken);
                var singleWithReply = await MedianRunAsync(host, off, withReply: true, report.SingleRowBatchOfOneWithReplyRowsPerSecond, cancellationToken);
                report.Runs.Add(single);
                report.Runs.Add(singleWithReply);
                report.SingleRowSpeedup = single.RowsPerSecond > 0 ? peak.RowsPerSecond / single.RowsPerSecond : null;
                report.SingleRowSpeedupWithReply = singleWithReply.RowsPerSecond > 0 ? peakWithReply.RowsPerSecond / singleWithReply.RowsPerSecond : null;
            }

            await using (var host = await BenchHost.StartAsync(connection, rabbitMqUri, model.Bytes, "hundred", new() { ["MaxBatchRows"] = "100", ["MaxQueueDelayMs"] = "0" }, cancellationToken))
            {
                await host.RunAsync("warm-up", "off", Math.Min(50, requests), 100, withReply: false, null, cancellationToken);
                report.Runs.Add(await host.RunAsync("100-row, max rate", "off: 1 request per call", requests, 100, withReply: false, null, cancellationToken));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            report.Error = ex.Message;
            BenchRunner.Log($"[requests] FAILED: {ex}");
        }
        finally
        {
            await DropDatabaseAsync(database);
        }

        return report;
    }

    /// <summary>
    /// Enough requests for the JIT to reach its optimized code on both paths (methods run per batch get there only
    /// after some dozens of batches), so the first measured run is not slower than the others.
    /// </summary>
    private async Task WarmUpAsync(BenchHost host, string batching, CancellationToken cancellationToken)
    {
        await host.RunAsync("warm-up", batching, Math.Min(2_000, requests), 1, withReply: true, null, cancellationToken);
        await host.RunAsync("warm-up", batching, Math.Min(4_000, requests), 1, withReply: false, null, cancellationToken);
    }

    /// <summary>
    /// The single-row max-rate run, repeated: this box is shared and a run moves by ±10%, so the ratio is taken between
    /// medians (every run is logged and kept in the report).
    /// </summary>
    private async Task<RequestRunResult> MedianRunAsync(BenchHost host, string batching, bool withReply, List<double> rowsPerSecond, CancellationToken cancellationToken)
    {
        var name = withReply ? "single-row, max rate, reply" : "single-row, max rate";
        var runs = new List<RequestRunResult>();
        for (var i = 0; i < repeats; i++)
        {
            var run = await host.RunAsync(repeats > 1 ? $"{name} ({i + 1}/{repeats})" : name, batching, requests, 1, withReply, null, cancellationToken);
            runs.Add(run);
            rowsPerSecond.Add(run.RowsPerSecond);
        }

        var median = runs.OrderBy(r => r.RowsPerSecond).ElementAt(runs.Count / 2);
        return repeats > 1 ? median with { Name = $"{name} (median of {repeats})" } : median;
    }

    public static void Print(RequestBenchReport report)
    {
        AnsiConsole.MarkupLine($"[bold]request mode[/] — {Markup.Escape(report.Model)}, consumer concurrency {report.ConsumerConcurrency}; {Markup.Escape(report.Note)}");
        if (report.Error is not null)
        {
            AnsiConsole.MarkupLine($"[red]failed:[/] {Markup.Escape(report.Error)}");
        }

        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in new[] { "run", "batching", "requests", "req/s", "rows/s", "avg batch rows", "p50 ms", "p95 ms", "p99 ms", "not scored" })
        {
            table.AddColumn(new TableColumn(column).RightAligned());
        }

        foreach (var r in report.Runs)
        {
            var name = r.TargetRequestsPerSecond is { } rate ? $"{r.Name} ({rate:N0} req/s)" : r.Name;
            table.AddRow(
                Markup.Escape(name), Markup.Escape(r.Batching), $"{r.Requests:N0} × {r.RowsPerRequest}", $"{r.RequestsPerSecond:N0}", $"{r.RowsPerSecond:N0}",
                $"{r.AverageBatchRows:N1}", $"{r.P50Ms:F1}", $"{r.P95Ms:F1}", $"{r.P99Ms:F1}", $"{r.NotScored}");
        }

        AnsiConsole.Write(table);
        if (report.SingleRowSpeedup is { } speedup)
        {
            AnsiConsole.MarkupLine($"single-row requests: dynamic batching gives [bold]{speedup:F1}×[/] the rows/s of batches of one (target ≥ 8×)");
            PrintRuns(report.SingleRowDynamicRowsPerSecond, report.SingleRowBatchOfOneRowsPerSecond);
        }

        if (report.SingleRowSpeedupWithReply is { } withReply)
        {
            AnsiConsole.MarkupLine($"single-row requests with a reply address: [bold]{withReply:F1}×[/]");
            PrintRuns(report.SingleRowDynamicWithReplyRowsPerSecond, report.SingleRowBatchOfOneWithReplyRowsPerSecond);
        }

        if (report.Runs.FirstOrDefault(r => r.Name == HalfOfReplyPeak) is { } half)
        {
            AnsiConsole.MarkupLine($"with replies at half of the peak rate with replies ({half.TargetRequestsPerSecond:N0} req/s): p99 [bold]{half.P99Ms:F1} ms[/] (target < 50 ms)");
        }

        if (report.Runs.FirstOrDefault(r => r.Name == HalfOfPeak) is { } strict)
        {
            AnsiConsole.MarkupLine($"  stricter, with replies at half of the peak rate without replies ({strict.TargetRequestsPerSecond:N0} req/s): p99 {strict.P99Ms:F1} ms");
        }
    }

    private static void PrintRuns(List<double> dynamic, List<double> batchesOfOne)
    {
        if (dynamic.Count > 1)
        {
            AnsiConsole.MarkupLine(
                $"  medians of {dynamic.Count} runs each; dynamic {string.Join(" / ", dynamic.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))}, "
                + $"batches of one {string.Join(" / ", batchesOfOne.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))} rows/s");
        }
    }

    private async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(postgresConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await create.ExecuteNonQueryAsync(cancellationToken);
        return new NpgsqlConnectionStringBuilder(postgresConnectionString) { Database = name }.ConnectionString;
    }

    private async Task DropDatabaseAsync(string name)
    {
        try
        {
            NpgsqlConnection.ClearAllPools();
            await using var connection = new NpgsqlConnection(postgresConnectionString);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            BenchRunner.Log($"warning: could not drop database {name}: {ex.Message}");
        }
    }

    /// <summary>An in-process worker with given request options, plus the raw AMQP publisher and reply consumer.</summary>
    private sealed class BenchHost : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly IConnection _connection;
        private readonly IChannel _channel;
        private readonly string _queue;
        private readonly string _replyQueue;
        private volatile RunState? _run;
        private readonly string _prefix;
        private readonly string _rabbitMqUri;
        private readonly string _postgres;

        private BenchHost(WebApplication app, IConnection connection, IChannel channel, string prefix, string replyQueue, string rabbitMqUri, string postgres)
        {
            _postgres = postgres;
            _app = app;
            _connection = connection;
            _channel = channel;
            _prefix = prefix;
            _queue = prefix + RequestBatchingOptions.QueueName;
            _replyQueue = replyQueue;
            _rabbitMqUri = rabbitMqUri;
        }

        public static async Task<BenchHost> StartAsync(
            string postgres, string rabbitMqUri, byte[] model, string label, Dictionary<string, string> requestOptions, CancellationToken cancellationToken)
        {
            var prefix = $"bench-req-{Guid.NewGuid().ToString("N")[..8]}-{label}-";
            var settings = new Dictionary<string, string?>
            {
                ["ConnectionStrings:Postgres"] = postgres,
                ["ConnectionStrings:RabbitMq"] = rabbitMqUri,
                ["BatchScoring:ModelStorePath"] = Path.Combine(Path.GetTempPath(), "batchscore-bench", "request-models"),
                ["BatchScoring:QueuePrefix"] = prefix,
                ["Logging:LogLevel:Default"] = "Warning",
            };
            foreach (var (key, value) in requestOptions)
            {
                settings[$"{RequestBatchingOptions.SectionName}:{key}"] = value;
            }

            var app = ServiceHost.Build(new ServeSettings(ServiceRoles.Worker, "http://127.0.0.1:0", Migrate: true), configure: c => c.AddInMemoryCollection(settings));
            await app.StartAsync(cancellationToken);
            using (var stream = new MemoryStream(model))
            {
                await app.Services.GetRequiredService<ModelRegistry>().RegisterAsync(ModelName, stream, cancellationToken);
            }

            // The same write coalescing as the worker: one socket send per publish otherwise (the client is on the same 2 cores).
            var factory = new ConnectionFactory { Uri = new Uri(rabbitMqUri), SocketFactory = CoalescingTcpClient.Create };
            var connection = await factory.CreateConnectionAsync(cancellationToken);
            var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            var reply = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
            var host = new BenchHost(app, connection, channel, prefix, reply.QueueName, rabbitMqUri, postgres);
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, delivery) =>
            {
                host._run?.Complete(delivery.Body.Span, Stopwatch.GetTimestamp());
                return Task.CompletedTask;
            };
            await channel.BasicConsumeAsync(reply.QueueName, autoAck: true, consumer, cancellationToken);
            return host;
        }

        public async Task<RequestRunResult> RunAsync(
            string name, string batching, int count, int rowsPerRequest, bool withReply, double? ratePerSecond, CancellationToken cancellationToken)
        {
            var random = new Random(count + rowsPerRequest);
            var runId = Guid.NewGuid().ToString("N")[..6];
            var bodies = new byte[count][];
            for (var i = 0; i < count; i++)
            {
                bodies[i] = Body($"{runId}-{i}", rowsPerRequest, withReply, random);
            }

            var batchBefore = BatchStats();
            var finishedBefore = FinishedRequests();
            var allocatedBefore = GC.GetTotalAllocatedBytes();
            var run = new RunState(runId, count);
            _run = run;
            var properties = new BasicProperties { ContentType = "application/json", DeliveryMode = DeliveryModes.Transient };
            var startedAt = DateTime.UtcNow;
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < count; i++)
            {
                if (ratePerSecond is { } rate)
                {
                    var due = start + (long)(i / rate * Stopwatch.Frequency);
                    var ahead = due - Stopwatch.GetTimestamp();
                    if (ahead > Stopwatch.Frequency / 1000)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((double)ahead / Stopwatch.Frequency), cancellationToken);
                    }
                }

                run.SentAt[i] = Stopwatch.GetTimestamp();
                await _channel.BasicPublishAsync("", _queue, false, properties, bodies[i], cancellationToken);
            }

            double seconds;
            double[] latencies;
            int notScored;
            if (withReply)
            {
                await run.AllDone.Task.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
                seconds = (double)(run.DoneAt.Max() - start) / Stopwatch.Frequency;
                latencies = new double[count];
                for (var i = 0; i < count; i++)
                {
                    latencies[i] = (double)(run.DoneAt[i] - run.SentAt[i]) * 1000 / Stopwatch.Frequency;
                }

                notScored = count - run.Scored;
            }
            else
            {
                // No answer to wait for: the worker's own count of finished (written, event confirmed, acknowledged) requests.
                var waitUntil = DateTime.UtcNow.AddMinutes(5);
                while (FinishedRequests().All - finishedBefore.All < count)
                {
                    if (DateTime.UtcNow > waitUntil)
                    {
                        throw new TimeoutException($"{name}: {FinishedRequests().All - finishedBefore.All:N0} of {count:N0} requests finished after 5 minutes.");
                    }

                    await Task.Delay(1, cancellationToken);
                }

                seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                notScored = count - (int)(FinishedRequests().Scored - finishedBefore.Scored);
                latencies = await PersistedLatenciesAsync(runId, run.SentAt, start, startedAt, cancellationToken);
            }

            _run = null;
            Array.Sort(latencies);
            var batchAfter = BatchStats();
            var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
            var calls = batchAfter.Count - batchBefore.Count;

            // Rows/s counts scored rows only: an overloaded or timed-out answer is fast but scores nothing.
            var result = new RequestRunResult(
                name, batching, count, rowsPerRequest, withReply, ratePerSecond, seconds, count / seconds, (double)(count - notScored) * rowsPerRequest / seconds,
                calls > 0 ? (batchAfter.Sum - batchBefore.Sum) / calls : 0,
                Percentile(latencies, 0.50), Percentile(latencies, 0.95), Percentile(latencies, 0.99), notScored, (double)allocated / count);
            BenchRunner.Log($"[requests] {name} ({batching}): {count:N0} × {rowsPerRequest} rows in {seconds:F2} s = {result.RequestsPerSecond:N0} req/s, "
                + $"{result.RowsPerSecond:N0} rows/s, avg batch {result.AverageBatchRows:N1} rows, p50/p95/p99 {result.P50Ms:F1}/{result.P95Ms:F1}/{result.P99Ms:F1} ms"
                + $", {result.AllocatedBytesPerRequest / 1024:N1} KiB allocated per request (worker and client)"
                + (result.NotScored > 0 ? $", {result.NotScored} not scored" : ""));
            return result;
        }

        /// <summary>
        /// Milliseconds from each request's publish to the <c>scored_at</c> of its rows (stamped as the batch's write
        /// begins; its commit follows), for the requests whose rows are in the results table.
        /// </summary>
        private async Task<double[]> PersistedLatenciesAsync(string runId, long[] sentAt, long start, DateTime startedAt, CancellationToken cancellationToken)
        {
            var table = $"{ResultTable.DefaultSchema}.{ResultTable.NormalizeColumnName("request_results_" + ModelName)}";
            await using var connection = new NpgsqlConnection(_postgres);
            await connection.OpenAsync(cancellationToken);
            await using var select = new NpgsqlCommand($"SELECT request_id, max(scored_at) FROM {table} WHERE request_id LIKE @run GROUP BY request_id", connection);
            select.Parameters.AddWithValue("run", runId + "-%");
            var latencies = new List<double>(sentAt.Length);
            await using var reader = await select.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var id = reader.GetString(0);
                var number = int.Parse(id.AsSpan(runId.Length + 1), CultureInfo.InvariantCulture);
                var publishedAt = startedAt + Stopwatch.GetElapsedTime(start, sentAt[number]);
                latencies.Add(Math.Max(0, (reader.GetDateTime(1) - publishedAt).TotalMilliseconds));
            }

            return [.. latencies];
        }

        /// <summary>Requests the worker finished (all outcomes), and those of them scored.</summary>
        private static (double All, double Scored) FinishedRequests() => Meters.Finished;

        private byte[] Body(string id, int rows, bool withReply, Random random)
        {
            var json = new StringBuilder(64 + (rows * Features * 12));
            json.Append("{\"requestId\":\"").Append(id).Append("\",\"model\":{\"name\":\"").Append(ModelName).Append("\"},");
            if (withReply)
            {
                json.Append("\"replyTo\":\"").Append(_replyQueue).Append("\",");
            }

            json.Append("\"rows\":[");
            for (var r = 0; r < rows; r++)
            {
                json.Append(r == 0 ? "" : ",").Append("{\"key\":\"").Append(id).Append('-').Append(r).Append("\",\"features\":{");
                for (var f = 0; f < Features; f++)
                {
                    json.Append(f == 0 ? "" : ",").Append("\"f_").Append(f.ToString("D3", CultureInfo.InvariantCulture)).Append("\":")
                        .Append(((random.NextDouble() * 4) - 2).ToString("F4", CultureInfo.InvariantCulture));
                }

                json.Append("}}");
            }

            json.Append("]}");
            return Encoding.UTF8.GetBytes(json.ToString());
        }

        private static (double Sum, double Count) BatchStats() => Meters.Batches;

        private static double Percentile(double[] sorted, double p) =>
            sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

        /// <summary>
        /// One run's bookkeeping, indexed by request number (ids are "{run}-{number}"): the client shares the two cores
        /// with the worker and the broker, so it keeps per-request work to two timestamps and a counter.
        /// </summary>
        private sealed class RunState(string runId, int count)
        {
            private readonly byte[] _prefix = Encoding.UTF8.GetBytes(runId + "-");
            private int _remaining = count;
            private int _scored;

            public long[] SentAt { get; } = new long[count];

            public long[] DoneAt { get; } = new long[count];

            public int Scored => Volatile.Read(ref _scored);

            public TaskCompletionSource AllDone { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

            /// <summary>Records an answer (plain reply): its request number and whether it was scored; others' answers and repeats are ignored.</summary>
            public void Complete(ReadOnlySpan<byte> body, long at)
            {
                var reader = new Utf8JsonReader(body);
                var number = -1;
                bool? scored = null;
                while ((number < 0 || scored is null) && reader.Read())
                {
                    if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                    {
                        continue;
                    }

                    if (reader.ValueTextEquals("requestId"u8))
                    {
                        reader.Read();
                        var id = reader.ValueSpan;
                        if (reader.TokenType != JsonTokenType.String || !id.StartsWith(_prefix)
                            || !System.Buffers.Text.Utf8Parser.TryParse(id[_prefix.Length..], out number, out var used) || used != id.Length - _prefix.Length
                            || number >= DoneAt.Length)
                        {
                            return;
                        }
                    }
                    else if (reader.ValueTextEquals("outcome"u8))
                    {
                        reader.Read();
                        scored = reader.ValueTextEquals("scored"u8);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }

                if (number < 0 || Interlocked.CompareExchange(ref DoneAt[number], at, 0) != 0)
                {
                    return;
                }

                if (scored == true)
                {
                    Interlocked.Increment(ref _scored);
                }

                if (Interlocked.Decrement(ref _remaining) == 0)
                {
                    AllDone.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _channel.CloseAsync();
            await _channel.DisposeAsync();
            await _app.StopAsync();
            await _app.DisposeAsync();
            try
            {
                await using var channel = await _connection.CreateChannelAsync();
                foreach (var suffix in new[] { "", "_error", "_skipped" })
                {
                    await channel.QueueDeleteAsync(_queue + suffix, ifUnused: false, ifEmpty: false);
                    await channel.ExchangeDeleteAsync(_queue + suffix, ifUnused: false);
                }
            }
            catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.RabbitMQClientException or RabbitMQ.Client.Exceptions.OperationInterruptedException or IOException)
            {
                BenchRunner.Log($"warning: could not delete the bench queues ({_prefix}*) on {_rabbitMqUri}: {ex.Message}");
            }

            await _connection.CloseAsync();
            await _connection.DisposeAsync();
        }
    }
}
