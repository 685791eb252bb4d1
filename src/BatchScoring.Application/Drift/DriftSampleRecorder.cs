using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using Prometheus;

namespace BatchScoring.Application.Drift;

/// <summary>
/// Keeps a few scored rows (model inputs and predictions) in <c>scoring.drift_samples</c> for drift audits: one
/// sample per scored chunk, and in request mode at most one per model version per interval. Scoring only copies the
/// chosen rows and queues them; a background loop writes them. A full queue drops the sample (counted): samples are
/// statistics, and scoring must not wait for them.
/// </summary>
public sealed class DriftSampleRecorder(NpgsqlDataSource dataSource, IOptions<DriftOptions> options, ILogger<DriftSampleRecorder> logger) : BackgroundService
{
    public const string JobSource = "job";
    public const string RequestSource = "request";

    private static readonly Counter Dropped = Metrics.CreateCounter(
        "batchscoring_drift_samples_dropped_total", "Drift samples dropped because the writer was behind or the database refused them.");

    private readonly Channel<DriftSample> _pending = Channel.CreateBounded<DriftSample>(
        new BoundedChannelOptions(64) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    private readonly ConcurrentDictionary<(string Model, int Version), long> _nextRequestSample = new();

    /// <summary>Request mode: whether this batch should give a sample (at most one per model version per interval).</summary>
    public bool RequestSampleDue(string model, int version)
    {
        if (options.Value.SampleRows == 0)
        {
            return false;
        }

        var now = Stopwatch.GetTimestamp();
        var key = (model, version);
        var due = _nextRequestSample.GetValueOrDefault(key);
        if (now < due)
        {
            return false;
        }

        var next = now + (options.Value.RequestSampleIntervalSeconds * Stopwatch.Frequency);
        return due == 0 ? _nextRequestSample.TryAdd(key, next) : _nextRequestSample.TryUpdate(key, next, due);
    }

    /// <summary>
    /// Copies up to <see cref="DriftOptions.SampleRows"/> scored rows, spread over the batch: the model's feature
    /// columns of <paramref name="input"/> and its output columns (numbers and strings).
    /// </summary>
    public void Record(string model, int version, string source, ColumnBatch input, InputMapping mapping, ScoreResult result)
    {
        var take = Math.Min(options.Value.SampleRows, result.ScoredRows.Length);
        if (take == 0)
        {
            return;
        }

        var positions = new int[take];
        var inputRows = new int[take];
        for (var i = 0; i < take; i++)
        {
            positions[i] = (int)((long)i * result.ScoredRows.Length / take);
            inputRows[i] = result.ScoredRows[positions[i]];
        }

        var columns = new List<BatchColumn>();
        foreach (var name in mapping.Bindings.Select(b => b.Column).Distinct(StringComparer.Ordinal))
        {
            if (input.Find(name) is { } column && Sampled(column))
            {
                columns.Add(column.Take(inputRows));
            }
        }

        // An output named like a feature would give the sample two columns of one name: the feature wins (as in profiles).
        var featureNames = columns.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        columns.AddRange(result.Outputs.Columns.Where(c => Sampled(c) && !featureNames.Contains(c.Name)).Select(c => c.Take(positions)).ToList());
        if (!_pending.Writer.TryWrite(new DriftSample(model, version, source, new ColumnBatch(columns))))
        {
            Dropped.Inc();
        }
    }

    /// <summary>Numbers and strings; lists and timestamps are not profiled.</summary>
    private static bool Sampled(BatchColumn column) => column.IsNumeric || column.Kind == ColumnKind.String;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var sample in _pending.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await WriteAsync(sample, stoppingToken);
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    Dropped.Inc();
                    logger.LogWarning("Drift sample for {Model} v{Version} not written: {Error}", sample.Model, sample.Version, ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down: samples still queued are dropped
        }
    }

    private async Task WriteAsync(DriftSample sample, CancellationToken cancellationToken)
    {
        await using var insert = dataSource.CreateCommand(
            "INSERT INTO scoring.drift_samples (model_name, model_version, source, row_count, columns) VALUES ($1, $2, $3, $4, $5)");
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sample.Model });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = sample.Version });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sample.Source });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = sample.Rows.RowCount });
        insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = ToJson(sample.Rows), NpgsqlDbType = NpgsqlDbType.Jsonb });
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Column-major JSON: <c>{"column": [value, ...]}</c>, nulls and non-finite numbers as null.</summary>
    public static byte[] ToJson(ColumnBatch rows)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var column in rows.Columns)
            {
                writer.WriteStartArray(column.Name);
                ColumnValues.Feed(
                    column,
                    rows: null,
                    number: value =>
                    {
                        if (double.IsFinite(value))
                        {
                            writer.WriteNumberValue(value);
                        }
                        else
                        {
                            writer.WriteNullValue();
                        }
                    },
                    text: writer.WriteStringValue,
                    missing: writer.WriteNullValue);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private sealed record DriftSample(string Model, int Version, string Source, ColumnBatch Rows);
}
