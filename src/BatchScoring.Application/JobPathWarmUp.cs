using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application;

/// <summary>
/// Takes the one-time costs of the job path at start-up instead of in the first job (docs/job-timing.md): the first
/// run of each database query a submit, a chunk, the finisher and a status read make (EF Core compiles a query on its
/// first use), the send endpoint of the chunk queue, and the code of a chunk (Parquet read, model run, Parquet write)
/// on a 10-row file and a tiny model in a temporary folder. Read-only in the database, on ids that do not exist; a
/// failure only means the first job pays those costs itself.
/// </summary>
public sealed class JobPathWarmUp(
    DependencyGate gate, JobStore jobs, ModelStore models, ModelRegistry registry, IBus bus, IOptions<BatchScoringOptions> options,
    IOptions<JobPathWarmUpOptions> warmUp, ILogger<JobPathWarmUp> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await gate.WhenReady(stoppingToken);
            var nobody = Guid.Empty;
            await registry.ResolveAsync("warm-up", null, Tenants.Default, stoppingToken);
            await models.GetModelVersionAsync("warm-up", 1, stoppingToken);
            await jobs.GetJobByIdempotencyKeyAsync("warm-up", Tenants.Default, stoppingToken);
            await jobs.GetJobAsync(nobody, stoppingToken);
            await jobs.GetChunksAsync(nobody, stoppingToken);
            await jobs.CountFailureReasonsAsync(nobody, 5, stoppingToken);
            await bus.GetSendEndpoint(new Uri($"exchange:{options.Value.QueueName(ChunkDispatcher.QueueName)}"));
            await WarmUpSampleFileAsync(warmUp.Value.ScoreSampleChunk, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        catch (Exception ex)
        {
            logger.LogDebug("Job path warm-up stopped early: {Error}", ex.Message);
        }
    }

    /// <summary>Plans a 10-row file (what the API does on submit) and, where chunks are scored, scores it to Parquet.</summary>
    private static async Task WarmUpSampleFileAsync(bool scoreChunk, CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("batchscoring-warm-up-");
        try
        {
            const string key = "customer_id";
            var input = Path.Combine(folder.FullName, "rows.parquet");
            await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 10, Features = 4, RowGroupRows = 10 }, cancellationToken);
            var dataset = await Dataset.PlanAsync(input, 10, cancellationToken);
            if (!scoreChunk)
            {
                return;
            }

            using var model = ScoringModel.Load(SampleModels.Mlp([4, 4, 1], seed: 1).Bytes, new ScoringSessionOptions { IntraOpThreads = 1, PreferCuda = false });
            var plan = ScoringPlan.Create(dataset.Columns, model, key, [], null);
            var source = await Dataset.ReadChunkAsync(dataset.Format, dataset.Chunks[0], plan.Columns, cancellationToken);
            var result = model.Score(source.Batch, plan.MapInputs(model, key, []), cancellationToken: cancellationToken);
            var outputs = result.Outputs.Columns.Select(c => new SourceColumn(c.Name, c.Kind, true)).ToArray();
            await using var writer = await ParquetBatchWriter.CreateAsync(Path.Combine(folder.FullName, "part.parquet"), outputs, cancellationToken);
            await writer.WriteAsync(result.Outputs, cancellationToken);
            await writer.CompleteAsync(cancellationToken);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}

/// <summary>What the job path warm-up runs besides the queries: a sample chunk only where chunks are scored (the worker role).</summary>
public sealed class JobPathWarmUpOptions
{
    public bool ScoreSampleChunk { get; set; } = true;
}
