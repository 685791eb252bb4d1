using BatchScoring.Data;
using Microsoft.EntityFrameworkCore;

namespace BatchScoring.IntegrationTests.Data;

/// <summary>The EF model (hand-mapped) must fit the schema that the SQL migrations create.</summary>
public sealed class ScoringDbContextTests(DataDatabase db) : IClassFixture<DataDatabase>
{
    [Fact]
    public async Task Every_entity_inserts_and_reads_back_through_EF()
    {
        var ct = TestContext.Current.CancellationToken;
        var job = TestData.Job(idempotencyKey: db.Server.UniqueName("ef"));
        job.State = JobState.Running;
        job.OutputParquet = "out/churn";
        job.AllowNonFinite = true;
        job.ErrorThresholdRows = 10;
        job.ErrorThresholdPercent = 1.5;
        job.StartedAt = DateTimeOffset.UtcNow;
        var chunk = new ChunkEntity { JobId = job.Id, ChunkIndex = 0, SourcePath = "a.parquet", RowGroup = null, RowStart = 0, RowCount = 5, State = ChunkState.Failed, Attempts = 2, Worker = "w1", Error = "boom" };
        var model = new ModelVersionEntity { ModelName = "ef_model", Version = 1, Sha256 = "abc", StoragePath = "models/abc.onnx", Signature = """{"inputs": [{"name": "x"}]}""" };
        var alias = new ModelAliasEntity { ModelName = "ef_model", Alias = "production", Version = 1 };
        var failed = new FailedRowEntity { JobId = job.Id, ChunkIndex = 0, RowNumber = 3, RowKey = "k3", ColumnName = "f1", Reason = "NaN" };

        await using (var write = new ScoringDbContext(ScoringDbContext.CreateOptions(db.DataSource)))
        {
            write.Jobs.Add(job);
            write.Chunks.Add(chunk);
            write.ModelVersions.Add(model);
            write.ModelAliases.Add(alias);
            write.FailedRows.Add(failed);
            await write.SaveChangesAsync(ct);
        }

        Assert.True(failed.Id > 0);
        await using var read = db.CreateContext();
        var readJob = await read.Jobs.SingleAsync(j => j.Id == job.Id, ct);
        Assert.Equal(
            (JobState.Running, "out/churn", true, 10L, 1.5, job.IdempotencyKey),
            (readJob.State, readJob.OutputParquet, readJob.AllowNonFinite, readJob.ErrorThresholdRows, readJob.ErrorThresholdPercent, readJob.IdempotencyKey));
        Assert.NotEqual(default, readJob.CreatedAt);
        var readChunk = await read.Chunks.SingleAsync(c => c.JobId == job.Id && c.State == ChunkState.Failed, ct);
        Assert.Equal((2, "w1", "boom", (int?)null), (readChunk.Attempts, readChunk.Worker, readChunk.Error, readChunk.RowGroup));
        var readModel = await read.ModelVersions.SingleAsync(m => m.ModelName == "ef_model", ct);
        Assert.Contains("\"name\"", readModel.Signature, StringComparison.Ordinal);
        Assert.Equal(1, (await read.ModelAliases.SingleAsync(a => a.ModelName == "ef_model", ct)).Version);
        var readFailed = await read.FailedRows.SingleAsync(f => f.JobId == job.Id, ct);
        Assert.Equal(("k3", "f1", "NaN", 3L), (readFailed.RowKey, readFailed.ColumnName, readFailed.Reason, readFailed.RowNumber));
        Assert.Equal("running", await db.ScalarAsync<string>("SELECT state FROM scoring.jobs WHERE id = $1", ct, job.Id));
        Assert.Equal("failed", await db.ScalarAsync<string>("SELECT state FROM scoring.chunks WHERE job_id = $1", ct, job.Id));
    }

    [Fact]
    public void The_model_uses_the_scoring_schema_and_snake_case_columns()
    {
        using var context = db.CreateContext();
        foreach (var entity in context.Model.GetEntityTypes())
        {
            Assert.Equal("scoring", entity.GetSchema());
            foreach (var property in entity.GetProperties())
            {
                var column = property.GetColumnName();
                Assert.Matches("^[a-z][a-z0-9_]*$", column);
            }
        }
    }
}
