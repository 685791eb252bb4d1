using System.Net;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Cli.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>A job is planned once, by the submitter; workers score from the plan stored on the job row.</summary>
public sealed class JobPlanTests(ServerFixture servers) : IDisposable
{
    private const int Features = 4;

    private readonly string _dir = Directory.CreateTempSubdirectory("bs-plan-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_submitter_stores_the_plan_and_the_worker_scores_from_it()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "plan", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var input = await WriteInputAsync("in.parquet");

        var status = await SubmitAsync(host, new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", Passthrough = ["region"], OutputTable = "planned" });
        var plan = await PlanOfAsync(host, status.Id);

        Assert.Equal(["customer_id", "region", "f_000", "f_001", "f_002", "f_003"], plan.Columns.Select(c => c.Name));
        Assert.Equal([ColumnKind.Int64, ColumnKind.String, ColumnKind.Float32, ColumnKind.Float32, ColumnKind.Float32, ColumnKind.Float32], plan.Columns.Select(c => c.Kind));
        Assert.Equal(["customer_id", "region"], plan.Carried);
        Assert.Equal(["f_000", "f_001", "f_002", "f_003"], plan.Features!);
        Assert.NotEmpty(plan.Outputs);
        var final = await host.WaitForEndAsync(status.Id, TimeSpan.FromMinutes(1), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(300, final.ScoredRows);
    }

    [Fact]
    public async Task A_file_whose_columns_changed_after_submit_fails_its_chunk_for_good_naming_the_column()
    {
        var (host, status, input) = await SubmitWithoutWorkerAsync("plan_changed");
        await using var running = host;

        // Same path, same rows, but f_002 is now double: a numeric column the model could still map, read as planned it is not.
        File.Delete(input);
        await using (var writer = await ParquetBatchWriter.CreateAsync(
            input,
            [new SourceColumn("customer_id", ColumnKind.Int64, false), .. Enumerable.Range(0, Features).Select(f => new SourceColumn($"f_{f:D3}", f == 2 ? ColumnKind.Float64 : ColumnKind.Float32, false))],
            Ct))
        {
            await writer.WriteAsync(new ColumnBatch(
            [
                new BatchColumn("customer_id", ColumnKind.Int64, Enumerable.Range(0, 300).Select(i => (long)i).ToArray()),
                .. Enumerable.Range(0, Features).Select(f => f == 2
                    ? new BatchColumn("f_002", ColumnKind.Float64, new double[300])
                    : new BatchColumn($"f_{f:D3}", ColumnKind.Float32, new float[300])),
            ]), Ct);
            await writer.CompleteAsync(Ct);
        }

        var outcome = await ScoreChunkAsync(host, status.Id, 0);

        Assert.Equal(ChunkOutcome.Failed, outcome);
        var reason = await ChunkErrorAsync(host, status.Id, 0);
        Assert.Contains($"Input file '{input}' changed after the job was submitted", reason, StringComparison.Ordinal);
        Assert.Contains("column 'f_002' is Float64 now, the job was planned with Float32", reason, StringComparison.Ordinal);
        Assert.Equal("failed", (await host.GetStatusAsync(status.Id, Ct)).State);
    }

    [Fact]
    public async Task The_worker_reads_the_stored_plan_an_unreadable_one_fails_the_job()
    {
        var (host, status, _) = await SubmitWithoutWorkerAsync("plan_corrupt");
        await using var running = host;
        await ExecuteAsync(host, "UPDATE scoring.jobs SET plan = '{\"columns\": 7}' WHERE id = $1", status.Id);

        Assert.Equal(ChunkOutcome.Failed, await ScoreChunkAsync(host, status.Id, 0));
        Assert.Contains("stored plan", await ChunkErrorAsync(host, status.Id, 0), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_submitted_before_plans_were_stored_is_planned_by_the_worker()
    {
        var (host, status, _) = await SubmitWithoutWorkerAsync("plan_legacy");
        await using var running = host;
        await ExecuteAsync(host, "UPDATE scoring.jobs SET plan = NULL WHERE id = $1", status.Id);

        for (var chunk = 0; chunk < status.ChunksTotal; chunk++)
        {
            Assert.Equal(ChunkOutcome.Committed, await ScoreChunkAsync(host, status.Id, chunk));
        }

        var final = await host.GetStatusAsync(status.Id, Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        Assert.Equal(300, final.ScoredRows);
    }

    /// <summary>A submitted job and no worker role: its chunk messages wait in the queue while a test scores chunks by hand.</summary>
    private async Task<(ServiceTestHost Host, JobStatus Status, string Input)> SubmitWithoutWorkerAsync(string name)
    {
        var host = await ServiceTestHost.StartAsync(servers, name, ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var input = await WriteInputAsync("in.parquet");
        return (host, await SubmitAsync(host, new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = name }), input);
    }

    private async Task<string> WriteInputAsync(string name)
    {
        var path = Path.Combine(_dir, name);
        await DatasetGenerator.WriteParquetAsync(path, new GeneratedDatasetOptions { Rows = 300, Features = Features, RowGroupRows = 100 }, Ct);
        return path;
    }

    private static async Task<JobStatus> SubmitAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, status, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return status!;
    }

    private static async Task<ScoringPlan> PlanOfAsync(ServiceTestHost host, Guid jobId)
    {
        var job = await host.Services.GetRequiredService<JobStore>().GetJobAsync(jobId, Ct);
        Assert.NotNull(job?.Plan);
        using var document = JsonDocument.Parse(job.Plan);
        Assert.Equal(JsonValueKind.Array, document.RootElement.GetProperty("columns").ValueKind);
        return ScoringPlan.FromJson(jobId, job.Plan);
    }

    private static async Task<ChunkOutcome> ScoreChunkAsync(ServiceTestHost host, Guid jobId, int index)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var chunk = (await scope.ServiceProvider.GetRequiredService<JobStore>().GetChunksAsync(jobId, Ct)).Single(c => c.ChunkIndex == index);
        return await scope.ServiceProvider.GetRequiredService<ChunkScorer>().ScoreAsync(
            ChunkRanges.ToMessage(chunk), Ct);
    }

    private static async Task<string> ChunkErrorAsync(ServiceTestHost host, Guid jobId, int index) =>
        (await host.Services.GetRequiredService<JobStore>().GetChunksAsync(jobId, Ct)).Single(c => c.ChunkIndex == index).Error!;

    private static async Task ExecuteAsync(ServiceTestHost host, string sql, Guid jobId)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
    }
}
