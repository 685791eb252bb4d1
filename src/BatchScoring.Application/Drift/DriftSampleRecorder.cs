using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Drift;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Application.Drift;

/// <summary>
/// Keeps a few scored rows (model inputs and predictions) in <c>scoring.drift_samples</c> for drift audits: one
/// sample per scored chunk, a uniform random sample (<see cref="RowReservoir"/>) of all the chunk's scored rows
/// whatever their order, and in request mode at most one per model version per interval, a random subset of one
/// batch. Scoring only copies the chosen rows and queues them; a background loop writes them. A full queue drops the
/// sample (counted): samples are statistics, and scoring must not wait for them.
/// </summary>
public sealed class DriftSampleRecorder(NpgsqlDataSource dataSource, IOptions<DriftOptions> options, ILogger<DriftSampleRecorder> logger) : BackgroundService
{
    public const string JobSource = "job";
    public const string RequestSource = "request";

    /// <summary>A chunk whose last batch never came (its scoring failed) is forgotten after this long.</summary>
    private static readonly TimeSpan AbandonedChunkAge = TimeSpan.FromMinutes(10);

    private readonly Channel<DriftSample> _pending = Channel.CreateBounded<DriftSample>(
        new BoundedChannelOptions(64) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    private readonly ConcurrentDictionary<(string Model, int Version), long> _nextRequestSample = new();
    private readonly ConcurrentDictionary<(Guid Job, int Chunk), ChunkSample> _chunks = new();
    private readonly Random _seeds = options.Value.SampleSeed is { } seed ? new Random(seed) : new Random();

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
    /// Request mode: copies a uniform random choice of up to <see cref="DriftOptions.SampleRows"/> scored rows of one
    /// batch: the model's feature columns of <paramref name="input"/> and its output columns (numbers and strings).
    /// </summary>
    public void Record(string model, int version, string source, ColumnBatch input, InputMapping mapping, ScoreResult result)
    {
        if (options.Value.SampleRows == 0 || result.ScoredRows.Length == 0)
        {
            return;
        }

        var sample = new ChunkSample(model, version, source, options.Value.SampleRows, NextRandom());
        sample.Add(input, mapping, result);
        Enqueue(sample);
    }

    /// <summary>
    /// Job mode, called for every batch of a chunk in order (also batches where no row could be scored): the rows of
    /// the batch [<paramref name="batchStart"/>, + input rows) of a chunk of <paramref name="chunkRows"/> rows enter
    /// the chunk's reservoir, and the sample is queued after its last batch. A batch at 0 starts the chunk afresh
    /// (a redelivered chunk is sampled once, from its new run).
    /// </summary>
    public void RecordChunkBatch(
        string model, int version, (Guid Job, int Chunk) chunk, int batchStart, int chunkRows, ColumnBatch input, InputMapping mapping, ScoreResult result)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (options.Value.SampleRows == 0)
        {
            return;
        }

        var sample = batchStart == 0
            ? _chunks[chunk] = new ChunkSample(model, version, JobSource, options.Value.SampleRows, NextRandom())
            : _chunks.GetValueOrDefault(chunk);
        if (sample is null)
        {
            return;
        }

        sample.Add(input, mapping, result);
        if (batchStart + input.RowCount >= chunkRows && _chunks.TryRemove(new KeyValuePair<(Guid, int), ChunkSample>(chunk, sample)))
        {
            Enqueue(sample);
        }
    }

    private Random NextRandom()
    {
        lock (_seeds)
        {
            return new Random(_seeds.Next());
        }
    }

    private void Enqueue(ChunkSample sample)
    {
        if (sample.Rows > 0 && !_pending.Writer.TryWrite(new DriftSample(sample.Model, sample.Version, sample.Source, sample.Rows, sample.ToJson())))
        {
            ScoringMetrics.DriftSamplesDropped.Add(1);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var sample in _pending.Reader.ReadAllAsync(stoppingToken))
            {
                ForgetAbandonedChunks();
                try
                {
                    await WriteAsync(sample, stoppingToken);
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    ScoringMetrics.DriftSamplesDropped.Add(1);
                    logger.SampleNotWritten(sample.Model, sample.Version, ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down: samples still queued are dropped
        }
    }

    private void ForgetAbandonedChunks()
    {
        var before = Stopwatch.GetTimestamp() - (long)(AbandonedChunkAge.TotalSeconds * Stopwatch.Frequency);
        foreach (var (key, sample) in _chunks)
        {
            if (sample.LastAddedAt < before)
            {
                _chunks.TryRemove(new KeyValuePair<(Guid, int), ChunkSample>(key, sample));
            }
        }
    }

    private async Task WriteAsync(DriftSample sample, CancellationToken cancellationToken)
    {
        await using var insert = dataSource.CreateCommand(
            "INSERT INTO scoring.drift_samples (model_name, model_version, source, row_count, columns) VALUES ($1, $2, $3, $4, $5)");
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sample.Model });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = sample.Version });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sample.Source });
        insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = sample.RowCount });
        insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = sample.Json, NpgsqlDbType = NpgsqlDbType.Jsonb });
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed record DriftSample(string Model, int Version, string Source, int RowCount, byte[] Json);
}
