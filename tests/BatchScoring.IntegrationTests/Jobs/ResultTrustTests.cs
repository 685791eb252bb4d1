using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using static BatchScoring.IntegrationTests.Jobs.JobFailureSupport;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>What analysts read is what they can trust (docs/results.md).</summary>
public sealed class ResultTrustTests(ServerFixture servers)
{
    private static readonly string[] FeatureNames = ["f_000", "f_001", "f_002", "f_003"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SubmitScoringJob Job(string input, string table) =>
        new() { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = table, ChunkRows = 500 };

    private static async Task<string> WriteInputAsync(ServiceTestHost host, string name, long rows, int nanEvery = 0)
    {
        var path = Path.Combine(host.WorkDir, name);
        await DatasetGenerator.WriteParquetAsync(path, new GeneratedDatasetOptions { Rows = rows, Features = 4, RowGroupRows = 500, Seed = 3, NaNEvery = nanEvery }, Ct);
        return path;
    }

    private static async Task<JobStatus> SubmitOkAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, status, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return status!;
    }

    [Fact]
    public async Task Rows_of_a_job_failed_on_its_threshold_stay_in_the_table_but_not_in_the_succeeded_view()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "trust", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 6, featureNames: FeatureNames).Bytes, Ct);

        var failed = await SubmitOkAsync(host, Job(await WriteInputAsync(host, "dirty.parquet", 2_000, nanEvery: 10), "trust_results") with { MaxFailedPercent = 5 });
        Assert.Equal("failed", (await host.WaitForEndAsync(failed.Id, TimeSpan.FromSeconds(60), Ct)).State);
        // The job fails once its third 500-row chunk (50 NaN rows each) passes 5 %; the chunk still being scored then
        // commits after the job failed (nothing accepted is lost), the ones not started fail unscored.
        JobStatus failedEnd = null!;
        await Poll.UntilAsync(
            async () => (failedEnd = await host.GetStatusAsync(failed.Id, Ct)) is { } s && s.ChunksDone + s.ChunksFailed == s.ChunksTotal,
            TimeSpan.FromSeconds(60), "every chunk of the failed job in a final state", Ct);
        var good = await SubmitOkAsync(host, Job(await WriteInputAsync(host, "clean.parquet", 1_500), "trust_results"));
        Assert.Equal("succeeded", (await host.WaitForEndAsync(good.Id, TimeSpan.FromSeconds(60), Ct)).State);

        const string InTable = "SELECT count(*) FROM scoring.trust_results WHERE job_id = $1";
        const string InView = "SELECT count(*) FROM scoring.trust_results_succeeded WHERE job_id = $1";
        Assert.InRange(failedEnd.ScoredRows, 3 * 450L, 4 * 450L);
        Assert.Equal(failedEnd.ScoredRows, await ScalarAsync(host.PostgresConnectionString, InTable, failed.Id, Ct));
        Assert.Equal(0L, await ScalarAsync(host.PostgresConnectionString, InView, failed.Id, Ct));
        Assert.Equal(1_500L, await ScalarAsync(host.PostgresConnectionString, InTable, good.Id, Ct));
        Assert.Equal(1_500L, await ScalarAsync(host.PostgresConnectionString, InView, good.Id, Ct));
        await using var db = Npgsql.NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var all = db.CreateCommand("SELECT count(*), bool_and(has_table_privilege('scoring_reader', 'scoring.trust_results_succeeded', 'SELECT')) FROM scoring.trust_results_succeeded");
        await using var reader = await all.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        Assert.Equal(1_500L, reader.GetInt64(0));
        Assert.True(reader.GetBoolean(1));
    }

    [Fact]
    public async Task A_second_job_into_the_same_parquet_folder_is_refused_and_the_first_jobs_parts_stay_whole()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "trust-parquet", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 6, featureNames: FeatureNames).Bytes, Ct);
        var output = Path.Combine(host.WorkDir, "out");
        var first = await SubmitOkAsync(host, Job(await WriteInputAsync(host, "a.parquet", 3_000), "trust_parquet") with { OutputParquet = output });
        Assert.Equal("succeeded", (await host.WaitForEndAsync(first.Id, TimeSpan.FromSeconds(60), Ct)).State);
        var parts = Directory.GetFiles(output, "part-*.parquet").ToDictionary(p => p, File.ReadAllBytes);

        // Each part says in its footer which job, model version and chunk wrote it.
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(SampleModels.Mlp([4, 8, 1], seed: 6, featureNames: FeatureNames).Bytes));
        foreach (var part in parts.Keys)
        {
            await using var stream = File.OpenRead(part);
            await using var reader = await Parquet.ParquetReader.CreateAsync(stream, cancellationToken: Ct);
            Assert.Equal(first.Id.ToString(), reader.CustomMetadata["batchscoring.job_id"]);
            Assert.Equal("m", reader.CustomMetadata["batchscoring.model_name"]);
            Assert.Equal("1", reader.CustomMetadata["batchscoring.model_version"]);
            Assert.Equal(sha256, reader.CustomMetadata["batchscoring.model_sha256"]);
            Assert.Equal(int.Parse(Path.GetFileNameWithoutExtension(part)["part-".Length..], System.Globalization.CultureInfo.InvariantCulture).ToString(System.Globalization.CultureInfo.InvariantCulture),
                reader.CustomMetadata["batchscoring.chunk_index"]);
        }

        var (response, _, body) = await host.SubmitAsync(Job(await WriteInputAsync(host, "b.parquet", 1_000), "trust_parquet") with { OutputParquet = output }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("already holds another job's Parquet output", body, StringComparison.Ordinal);
        Assert.Contains(output, body, StringComparison.Ordinal);

        // Nothing of the first job's output changed.
        Assert.Equal(parts.Keys.Order(), Directory.GetFiles(output, "part-*.parquet").Order());
        Assert.All(parts, p => Assert.Equal(p.Value, File.ReadAllBytes(p.Key)));
        Assert.Equal(3_000L, await ScalarAsync(host.PostgresConnectionString, "SELECT count(*) FROM scoring.trust_parquet WHERE job_id = $1", first.Id, Ct));
    }
}
