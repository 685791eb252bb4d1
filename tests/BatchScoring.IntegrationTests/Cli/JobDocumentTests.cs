using System.Collections;
using System.Text.Json;
using BatchScoring.Cli.Commands;
using BatchScoring.Contracts;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// The job path's JSON without the object serializer (ADR-011): the submit body must be what the serializer writes,
/// and the status document must give the values, the summary and the <c>--json</c> output the typed status gives.
/// Pure unit tests.
/// </summary>
public sealed class JobDocumentTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    [Fact]
    public void Submit_body_is_what_the_serializer_writes_with_every_property_set()
    {
        var job = new SubmitScoringJob
        {
            Model = "churn",
            ModelVersion = "production",
            Input = "/data/in \"quoted\" é+<.parquet",
            InputSql = "select 1",
            InputSource = "warehouse",
            KeyColumn = "customer_id",
            Passthrough = ["region", "segment"],
            Features = ["f0", "f1"],
            OutputTable = "scoring.results",
            OutputParquet = "/out",
            ChunkRows = 1000,
            BatchRows = 256,
            AllowNonFinite = true,
            MaxFailedRows = 12,
            MaxFailedPercent = 2.5,
            IdempotencyKey = "key-1",
            Challenger = "churn@staging",
        };
        // A property added to the request and not written by SubmitJobJson would silently never reach the API.
        var unset = typeof(SubmitScoringJob).GetProperties().Where(p => IsDefault(p.GetValue(job))).Select(p => p.Name).ToList();
        Assert.True(unset.Count == 0, $"set every property in this test (and write it in SubmitJobJson): {string.Join(", ", unset)}");

        Assert.Equal(JsonSerializer.Serialize(job, Web), System.Text.Encoding.UTF8.GetString(SubmitJobJson.Write(job)));
    }

    [Fact]
    public void Submit_body_writes_nulls_and_empty_lists_as_the_serializer_does()
    {
        var job = new SubmitScoringJob { Model = "m", KeyColumn = "id", ModelVersion = "3" };
        Assert.Equal(JsonSerializer.Serialize(job, Web), System.Text.Encoding.UTF8.GetString(SubmitJobJson.Write(job)));
        Assert.Equal("3", JsonSerializer.Deserialize<SubmitScoringJob>(SubmitJobJson.Write(job), Web)!.ModelVersion);
    }

    [Fact]
    public void Status_document_gives_the_typed_status_values_summary_and_json()
    {
        var status = FullStatus();
        var json = JsonSerializer.Serialize(status, ApiClient.Json);
        using var parsed = JsonDocument.Parse(json);
        var document = JobDocument.Parse(parsed.RootElement);

        Assert.Equal(status.Id, document.Id);
        Assert.Equal(status.State, document.State);
        Assert.Equal(status.Model, document.Model);
        Assert.Equal(status.ModelVersion, document.ModelVersion);
        Assert.Equal(status.ModelSha256, document.ModelSha256);
        Assert.Equal(status.Input, document.Input);
        Assert.Equal((status.TotalRows, status.ScoredRows, status.FailedRows), (document.TotalRows, document.ScoredRows, document.FailedRows));
        Assert.Equal((status.ChunksTotal, status.ChunksDone, status.ChunksFailed), (document.ChunksTotal, document.ChunksDone, document.ChunksFailed));
        Assert.Equal((status.RowsPerSecond, status.EtaSeconds), (document.RowsPerSecond, document.EtaSeconds));
        Assert.Equal((status.OutputTable, status.OutputParquet, status.Error), (document.OutputTable, document.OutputParquet, document.Error));
        Assert.Equal(status.FailureSummary, document.FailureSummary);
        Assert.Equal(status.Stages, document.Stages);
        Assert.Equal(status.UpdatedAt, DateTimeOffset.Parse(document.UpdatedAt!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(JsonSerializer.Serialize(status.Challenger, ApiClient.Json), JsonSerializer.Serialize(document.Challenger, ApiClient.Json));

        // --json prints the API's document unchanged, formatted as the serializer formats the typed status.
        Assert.Equal(json, document.ToJson());

        var summary = JobsCommand.Describe(document);
        Assert.Contains($"Job {status.Id}: {status.State}", summary);
        Assert.Contains($"failures   {status.FailureSummary[1].Count:N0} × {status.FailureSummary[1].Reason}", summary);
        foreach (var line in ChallengerLines.Describe(status.Challenger).Concat(StageLines.Describe(status.Stages)))
        {
            Assert.Contains(line, summary);
        }
    }

    [Fact]
    public void Status_document_without_optional_parts_reads_as_absent()
    {
        var status = FullStatus() with { Challenger = null, Stages = null, FailureSummary = [], RowsPerSecond = null, Error = null, UpdatedAt = null };
        using var parsed = JsonDocument.Parse(JsonSerializer.Serialize(status, ApiClient.Json));
        var document = JobDocument.Parse(parsed.RootElement);
        Assert.Null(document.Challenger);
        Assert.Null(document.Stages);
        Assert.Empty(document.FailureSummary);
        Assert.Null(document.RowsPerSecond);
        Assert.Null(document.Error);
        Assert.Null(document.UpdatedAt);
    }

    [Theory]
    [InlineData("""{"state":"running"}""")]
    [InlineData("""{"id":"not-a-guid","state":"running"}""")]
    [InlineData("""{"id":"0f8fad5b-d9cb-469f-a165-70867728950e"}""")]
    [InlineData("""[]""")]
    public void A_document_that_is_not_a_job_status_is_refused(string json)
    {
        using var parsed = JsonDocument.Parse(json);
        Assert.Throws<JsonException>(() => JobDocument.Parse(parsed.RootElement));
    }

    private static JobStatus FullStatus() => new()
    {
        Id = Guid.NewGuid(),
        State = "failed",
        Model = "churn",
        ModelVersion = 7,
        ModelSha256 = new string('a', 64),
        Input = "/data/in.parquet",
        TotalRows = 1_000_000,
        ScoredRows = 999_000,
        FailedRows = 1_000,
        ChunksTotal = 20,
        ChunksDone = 19,
        ChunksFailed = 1,
        RowsPerSecond = 123_456.75,
        EtaSeconds = 12.5,
        OutputTable = "scoring.results",
        OutputParquet = "/out",
        Error = "too many failed rows: \"x\" é + <b>",
        FailureSummary = [new FailureReasonCount("non-finite value in 'f0'", 900), new FailureReasonCount("unparsable value 'abc'", 100)],
        CreatedAt = DateTimeOffset.UtcNow.AddMinutes(-2),
        StartedAt = DateTimeOffset.UtcNow.AddMinutes(-1),
        FinishedAt = DateTimeOffset.UtcNow,
        UpdatedAt = DateTimeOffset.UtcNow,
        Stages = new JobStageSeconds(1.25, 0.5, 4.75, 3.5, 0.125, 0.0625),
        Challenger = new ChallengerStatus
        {
            Model = "churn",
            ModelVersion = 8,
            ModelSha256 = new string('b', 64),
            OutputTable = "scoring.results_challenger",
            Comparison = new ChallengerComparison
            {
                Final = true,
                RowsCompared = 999_000,
                ChallengerFailedRows = 3,
                AgreementRate = 0.97,
                ScoreDifference = new ScoreDifference("score", "score", 0.01, 0.05, 0.1, 0.4),
                RealisedMetrics = [new RealisedMetrics("champion", "churn", 7, 5_000, 0.9, null, null)],
            },
        },
    };

    private static bool IsDefault(object? value) => value switch
    {
        null => true,
        string s => s.Length == 0,
        bool b => !b,
        int i => i == 0,
        ICollection c => c.Count == 0,
        _ => false,
    };
}
