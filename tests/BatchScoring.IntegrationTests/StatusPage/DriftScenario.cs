using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using BatchScoring.Application.Drift;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.IntegrationTests.StatusPage;

/// <summary>A "churn" model with a reference profile, one job of shifted data scored, and an audit that finds drift in f_000.</summary>
internal static class DriftScenario
{
    public const int Features = 3;

    public static string[] Names() => [.. Enumerable.Range(0, Features).Select(f => $"f_{f:D3}")];

    public static async Task RegisterAndProfileAsync(ServiceTestHost host, CancellationToken ct)
    {
        await host.RegisterModelAsync("churn", SampleModels.Mlp([Features, 4, 1], seed: 5, featureNames: Names()).Bytes, ct);
        using var response = await host.Client.PostAsJsonAsync("/api/models/churn/profile", new { input = WriteCsv(host, "reference.csv", 3_000, seed: 1, shift: 0), keyColumn = "id" }, ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(ct));
    }

    public static async Task<DriftReport> ScoreShiftedAndAuditAsync(ServiceTestHost host, CancellationToken ct)
    {
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = WriteCsv(host, "shifted.csv", 3_000, seed: 3, shift: 2), KeyColumn = "id", OutputTable = "scoring.results_churn", ChunkRows = 1_000,
        }, ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(1), ct)).State);
        DriftReport? report = null;
        await Infrastructure.Poll.UntilAsync(
            async () =>
            {
                using var audit = await host.Client.PostAsJsonAsync("/api/models/churn/drift/audit", new { }, ct);
                report = System.Text.Json.JsonSerializer.Deserialize<DriftReport>(await audit.Content.ReadAsStringAsync(ct), ServiceTestHost.Json);
                return report?.Verdict == DriftVerdicts.Drift;
            },
            TimeSpan.FromSeconds(20), "an audit that finds the shifted f_000 (the worker's samples written)", ct);
        return report!;
    }

    public static string WriteCsv(ServiceTestHost host, string name, int rows, int seed, double shift)
    {
        var random = new Random(seed);
        var csv = new StringBuilder("id," + string.Join(',', Names()) + "\n");
        for (var r = 0; r < rows; r++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r}");
            for (var f = 0; f < Features; f++)
            {
                var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                csv.Append(',').Append(Math.Round(normal + (f == 0 ? shift : 0), 5).ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var path = Path.Combine(host.WorkDir, name);
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
