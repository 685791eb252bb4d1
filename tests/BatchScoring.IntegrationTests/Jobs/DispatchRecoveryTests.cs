using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>
/// The outbox gap: a job recorded in PostgreSQL whose chunk messages were never sent (the API died in between)
/// is found by the scheduler's dispatch recovery and scored, once.
/// </summary>
public sealed class DispatchRecoveryTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_job_recorded_but_never_sent_is_dispatched_by_the_scheduler_and_scored_once()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "recover", ServiceRoles.All, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:DispatchRecoverySchedule"] = "0/1 * * * * ?",
            ["BatchScoring:DispatchRecoveryGraceSeconds"] = "5",
        });
        var mlp = SampleModels.Mlp([4, 8, 1], seed: 2, featureNames: ["f_000", "f_001", "f_002", "f_003"]);
        await host.RegisterModelAsync("churn", mlp.Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "input.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = 4, RowGroupRows = 1_000 }, Ct);

        // A normal job: sent at once, and marked as dispatched.
        var (response, normal, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = input, KeyColumn = "customer_id", OutputTable = "scoring.results_churn", ChunkRows = 1_000,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(normal!.Id, TimeSpan.FromMinutes(1), Ct)).State);
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        Assert.Equal(1L, await ScalarAsync(db, "SELECT count(*) FROM scoring.jobs WHERE id = $1 AND dispatched_at IS NOT NULL", normal.Id));

        // The same job recorded as the API records it, 10 s ago, but its messages never sent.
        var orphan = Guid.CreateVersion7();
        await using (var insert = db.CreateBatch())
        {
            var job = new NpgsqlBatchCommand(
                """
                INSERT INTO scoring.jobs (id, state, model_name, model_version, model_sha256, input_uri, input_format, key_column,
                    passthrough_columns, feature_columns, output_table, output_parquet, batch_size, chunk_size, allow_non_finite,
                    error_threshold_rows, error_threshold_percent, total_rows, chunks_total, created_at, updated_at)
                SELECT $2, 'queued', model_name, model_version, model_sha256, input_uri, input_format, key_column,
                    passthrough_columns, feature_columns, output_table, output_parquet, batch_size, chunk_size, allow_non_finite,
                    error_threshold_rows, error_threshold_percent, total_rows, chunks_total, now() - interval '10 seconds', now() - interval '10 seconds'
                FROM scoring.jobs WHERE id = $1
                """);
            var chunks = new NpgsqlBatchCommand(
                """
                INSERT INTO scoring.chunks (job_id, chunk_index, source_path, row_group, row_start, row_count, byte_offset)
                SELECT $2, chunk_index, source_path, row_group, row_start, row_count, byte_offset FROM scoring.chunks WHERE job_id = $1
                """);
            foreach (var command in new[] { job, chunks })
            {
                command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = normal.Id });
                command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = orphan });
                insert.BatchCommands.Add(command);
            }

            await insert.ExecuteNonQueryAsync(Ct);
        }

        var recovered = await host.WaitForEndAsync(orphan, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal("succeeded", recovered.State);
        Assert.Equal(3_000, recovered.ScoredRows);
        Assert.Equal(3_000L, await ScalarAsync(db, "SELECT count(DISTINCT customer_id) FROM scoring.results_churn WHERE job_id = $1", orphan));
        Assert.Equal(3_000L, await ScalarAsync(db, "SELECT count(*) FROM scoring.results_churn WHERE job_id = $1", orphan));
        Assert.Equal(1L, await ScalarAsync(db, "SELECT count(*) FROM scoring.jobs WHERE id = $1 AND dispatched_at IS NOT NULL", orphan));
    }

    [Fact]
    public async Task A_pass_that_cannot_reach_postgresql_is_counted_as_failed_and_rethrown()
    {
        await using var unreachable = NpgsqlDataSource.Create($"Host=127.0.0.1;Port={ServeProcess.FreeTcpPort()};Username=postgres;Timeout=5");
        await using var services = new ServiceCollection().BuildServiceProvider();
        var recovery = new DispatchRecovery(
            services.GetRequiredService<IServiceScopeFactory>(), new JobStore(unreachable), unreachable,
            Options.Create(new BatchScoringOptions()), NullLogger<DispatchRecovery>.Instance);
        using var measured = new ReconcilerMeasurements();

        await Assert.ThrowsAnyAsync<NpgsqlException>(() => recovery.ReconcileAsync(Ct));

        Assert.Equal((1, 0), (measured.Passes("failed"), measured.Passes("completed")));
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql, Guid id)
    {
        await using var command = db.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
