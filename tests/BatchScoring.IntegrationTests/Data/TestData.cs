using BatchScoring.Data;

namespace BatchScoring.IntegrationTests.Data;

internal static class TestData
{
    public static JobEntity Job(string model = "churn", string? idempotencyKey = null, long? thresholdRows = null, double? thresholdPercent = null) => new()
    {
        Id = Guid.CreateVersion7(),
        IdempotencyKey = idempotencyKey,
        ModelName = model,
        ModelVersion = 1,
        ModelSha256 = new string('a', 64),
        InputUri = "file:///data/input.parquet",
        InputFormat = "parquet",
        KeyColumn = "customer_id",
        PassthroughColumns = ["region"],
        FeatureColumns = ["f1", "f2"],
        OutputTable = "scoring.results_churn",
        BatchSize = 4096,
        ChunkSize = 10_000,
        ErrorThresholdRows = thresholdRows,
        ErrorThresholdPercent = thresholdPercent,
    };

    public static List<ChunkEntity> Chunks(int count, long rowsEach) =>
        Enumerable.Range(0, count).Select(i => new ChunkEntity
        {
            ChunkIndex = i,
            SourcePath = "/data/input.parquet",
            RowGroup = i,
            RowStart = i * rowsEach,
            RowCount = rowsEach,
        }).ToList();
}
