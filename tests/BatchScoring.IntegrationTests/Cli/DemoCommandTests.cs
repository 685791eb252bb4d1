using System.Text.Json;
using BatchScoring.Cli.Commands;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using Microsoft.Data.Sqlite;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>`batchscore demo` as a user runs it on a fresh clone: a separate process, no servers.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-demo-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Demo_scores_into_an_embedded_database_finds_the_drifted_features_and_answers_sql()
    {
        const int rows = 20_000;
        var (exit, stdout, stderr) = await CliProcess.RunAsync(Ct, "demo", "--dir", _dir, "--rows", rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("SELECT region", stdout, StringComparison.Ordinal);

        // Expected values computed here from the generated data and a plain C# forward pass.
        var model = DemoCommand.Model();
        var data = DemoCommand.TodayData(rows);
        var batch = DatasetGenerator.CreateBatch(data, 0, rows);
        var expected = new Dictionary<long, (string Region, float Score)>();
        for (var i = 0; i < rows; i++)
        {
            var x = Enumerable.Range(0, data.Features).Select(f => batch[GeneratedDatasetOptions.FeatureName(f)].As<float>()[i]).ToArray();
            if (!float.IsNaN(x[0]))
            {
                expected.Add(batch["customer_id"].As<long>()[i], (batch["region"].As<string>()[i], MlpReference.Forward(model, x)[0]));
            }
        }

        await using var db = new SqliteConnection($"Data Source={Path.Combine(_dir, "results.db")};Mode=ReadOnly");
        await db.OpenAsync(Ct);
        await using (var results = db.CreateCommand())
        {
            results.CommandText = "SELECT customer_id, region, score FROM results";
            await using var reader = await results.ExecuteReaderAsync(Ct);
            var seen = 0;
            while (await reader.ReadAsync(Ct))
            {
                var (region, score) = expected[reader.GetInt64(0)];
                Assert.Equal(region, reader.GetString(1));
                Assert.Equal(score, (float)reader.GetDouble(2), 1e-5f);
                seen++;
            }

            Assert.Equal(expected.Count, seen);
            Assert.Equal(rows - 2, seen); // a NaN every 10,000 rows
        }

        await using (var failed = db.CreateCommand())
        {
            failed.CommandText = "SELECT group_concat(row_key), min(column_name), count(*) FROM failed_rows";
            await using var reader = await failed.ExecuteReaderAsync(Ct);
            Assert.True(await reader.ReadAsync(Ct));
            Assert.Equal(("10000,20000", "f_000", 2L), (reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
        }

        await using (var drift = db.CreateCommand())
        {
            drift.CommandText = "SELECT drifted, columns FROM drift_reports";
            await using var reader = await drift.ExecuteReaderAsync(Ct);
            Assert.True(await reader.ReadAsync(Ct));
            Assert.Equal(1L, reader.GetInt64(0));
            using var columns = JsonDocument.Parse(reader.GetString(1));
            var drifted = columns.RootElement.EnumerateArray().Where(c => c.GetProperty("drifted").GetBoolean()).Select(c => c.GetProperty("name").GetString()).ToList();
            Assert.Contains("f_000", drifted);
            Assert.Contains("f_001", drifted);
            Assert.DoesNotContain(drifted, name => name is not ("f_000" or "f_001" or "score"));
        }
    }
}
