using System.Net;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Outputs;

/// <summary>
/// <c>failed_rows.row_key_json</c> keeps the key's type (migration 019): written by the chunk scorer for an integer key
/// and a text key, and usable to join a failed row to the results table with <c>to_jsonb(key) = row_key_json</c>.
/// </summary>
public sealed class FailedRowKeyTests(ServerFixture servers)
{
    private static readonly string[] FeatureNames = ["f_000", "f_001", "f_002", "f_003"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_integer_key_is_stored_as_a_json_number_and_a_text_key_as_a_json_string()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "failed_keys", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([4, 8, 1], seed: 4, featureNames: FeatureNames).Bytes, Ct);

        // Integer key (Parquet int64 customer_id): every 100th row has a NaN feature.
        var parquet = Path.Combine(host.WorkDir, "int.parquet");
        await DatasetGenerator.WriteParquetAsync(parquet, new GeneratedDatasetOptions { Rows = 1_000, Features = 4, RowGroupRows = 500, NaNEvery = 100, Seed = 3 }, Ct);
        var intJob = await RunAsync(host, new SubmitScoringJob { Model = "m", Input = parquet, KeyColumn = "customer_id", OutputTable = "int_keys" });

        // Text key (CSV): a number-looking key stays a string; two rows have a NaN or an empty feature.
        var csv = Path.Combine(host.WorkDir, "text.csv");
        await File.WriteAllLinesAsync(csv, [
            "id,f_000,f_001,f_002,f_003",
            "a-1,0.1,0.2,0.3,0.4",
            "007,NaN,0.2,0.3,0.4",
            "a-3,0.1,0.2,0.3,0.4",
            "x y,0.1,0.2,,0.4",
        ], Ct);
        var textJob = await RunAsync(host, new SubmitScoringJob { Model = "m", Input = csv, KeyColumn = "id", OutputTable = "text_keys", MaxFailedPercent = 100 });

        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        var intKeys = await FailedKeysAsync(db, intJob);
        Assert.Equal(10, intKeys.Count);
        Assert.All(intKeys, k => Assert.Equal("number", k.Type));
        Assert.All(intKeys, k => Assert.Equal(k.Text, k.Json));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (i * 100).ToString(System.Globalization.CultureInfo.InvariantCulture)), intKeys.Select(k => k.Text));
        Assert.Equal(10L, await ScalarAsync(db, "SELECT count(*) FROM scoring.failed_rows WHERE job_id = $1 AND (row_key_json)::bigint = row_key::bigint", intJob));

        var textKeys = await FailedKeysAsync(db, textJob);
        Assert.Equal([("string", "007", "\"007\""), ("string", "x y", "\"x y\"")], textKeys.Select(k => (k.Type, k.Text, k.Json)));

        // The documented join (docs/results.md): a failed row to the rows scored with the same key type; none match,
        // and the typed key matches the input's key column type exactly (a text '007' is not the number 7).
        Assert.Equal(0L, await ScalarAsync(db,
            "SELECT count(*) FROM scoring.failed_rows f JOIN scoring.text_keys r ON to_jsonb(r.id) = f.row_key_json WHERE f.job_id = $1", textJob));
        Assert.Equal(2L, await ScalarAsync(db,
            "SELECT count(*) FROM scoring.failed_rows f WHERE f.job_id = $1 AND f.row_key_json IN (to_jsonb('007'::text), to_jsonb('x y'::text))", textJob));
        Assert.Equal(0L, await ScalarAsync(db,
            "SELECT count(*) FROM scoring.failed_rows f WHERE f.job_id = $1 AND f.row_key_json = to_jsonb(7)", textJob));
        Assert.Equal(1L, await ScalarAsync(db,
            "SELECT count(*) FROM scoring.failed_rows f WHERE f.job_id = $1 AND f.row_key_json = to_jsonb(300::bigint)", intJob));
    }

    private static async Task<Guid> RunAsync(ServiceTestHost host, SubmitScoringJob request)
    {
        var (response, submitted, body) = await host.SubmitAsync(request, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var final = await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");
        return submitted.Id;
    }

    private static async Task<List<(string Type, string Text, string Json)>> FailedKeysAsync(NpgsqlDataSource db, Guid jobId)
    {
        await using var command = db.CreateCommand(
            "SELECT jsonb_typeof(row_key_json), row_key, row_key_json::text FROM scoring.failed_rows WHERE job_id = $1 ORDER BY row_number");
        command.Parameters.AddWithValue(jobId);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var keys = new List<(string, string, string)>();
        while (await reader.ReadAsync(Ct))
        {
            keys.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return keys;
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql, Guid jobId)
    {
        await using var command = db.CreateCommand(sql);
        command.Parameters.AddWithValue(jobId);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
