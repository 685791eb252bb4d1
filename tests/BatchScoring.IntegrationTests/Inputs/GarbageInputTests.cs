using System.Runtime.Serialization;
using System.Text;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Worker.Requests.Intake;
using BatchScoring.Contracts;
using BatchScoring.Scoring.Data;
using MassTransit;
using MassTransit.Serialization;

namespace BatchScoring.IntegrationTests.Inputs;

/// <summary>
/// Generated garbage (seeded, so a failure can be replayed) for every reader of outside input: score-request bodies,
/// job and chunk messages as MassTransit deserializes them, and Parquet/CSV files. Each case must either be read or
/// be refused with the reader's documented exception and a message; any other exception, or a case that runs for
/// seconds, fails the test with the seed and case that caused it. No servers involved.
/// </summary>
public sealed class GarbageInputTests : IDisposable
{
    private const int Seed = 20_261_206;
    private static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(5);

    private readonly string _dir = Directory.CreateTempSubdirectory("bs-garbage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Score_request_reader_answers_every_body_with_a_request_or_an_error()
    {
        var seeds = new[]
        {
            """{"requestId":"r-1","model":{"name":"churn","version":"2"},"rows":[{"key":1,"features":{"a":1.5,"b":[1,2],"c":"x","d":null,"e":true}}],"replyTo":"q","deadline":"2026-01-01T00:00:00Z"}""",
            """{"messageId":"m","responseAddress":"rabbitmq://h/q","message":{"requestId":"r","model":{"name":"m"},"rows":[]}}""",
        };
        var random = new Random(Seed);
        for (var i = 0; i < 3_000; i++)
        {
            var body = Mutate(random, Encoding.UTF8.GetBytes(seeds[i % seeds.Length]), i);
            var read = RunCase(() => ScoreRequestReader.Read(body), $"score request case {i}", body);
            Assert.True(
                (read.Request is not null && read.Error is null) || (read.Request is null && !string.IsNullOrWhiteSpace(read.Error)),
                $"case {i}: neither a request nor an error for {Show(body)}");
        }
    }

    [Fact]
    public void Job_messages_deserialize_or_fail_with_a_serialization_error_and_submissions_validate_or_fail_with_a_validation_error()
    {
        var submit = JsonSerializer.SerializeToUtf8Bytes(new
        {
            messageId = Guid.NewGuid(),
            messageType = new[] { "urn:message:BatchScoring.Contracts:SubmitScoringJob" },
            message = new SubmitScoringJob
            {
                Model = "churn", ModelVersion = "production", Input = "/data/in.parquet", KeyColumn = "id", Passthrough = ["region"],
                Features = ["a", "b"], OutputTable = "scoring.results", OutputParquet = "/data/out", ChunkRows = 1_000, MaxFailedPercent = 2,
            },
        }, SystemTextJsonMessageSerializer.Options);
        var chunk = JsonSerializer.SerializeToUtf8Bytes(new
        {
            messageId = Guid.NewGuid(),
            messageType = new[] { "urn:message:BatchScoring.Contracts:ScoreChunk" },
            message = new ScoreChunk(Guid.NewGuid(), 3, "/data/in.parquet", 0, 1_000, 500, 0),
        }, SystemTextJsonMessageSerializer.Options);

        var random = new Random(Seed + 1);
        var read = 0;
        for (var i = 0; i < 3_000; i++)
        {
            var body = Mutate(random, i % 2 == 0 ? submit : chunk, i);
            RunCase(() =>
            {
                SerializerContext context;
                try
                {
                    context = SystemTextJsonMessageSerializer.Instance.Deserialize(new BytesMessageBody(body), EmptyHeaders.Instance);
                }
                catch (SerializationException)
                {
                    return 0;
                }

                if (i % 2 == 0)
                {
                    if (TryGet<SubmitScoringJob>(context) is { } job)
                    {
                        read++;
                        try
                        {
                            JobSubmitter.ValidateFields(job);
                        }
                        catch (JobValidationException ex) when (ex.Message.Length > 0)
                        {
                        }
                    }
                }
                else if (TryGet<ScoreChunk>(context) is not null)
                {
                    read++;
                }

                return 0;
            }, $"message case {i}", body);
        }

        Assert.True(read > 100, $"only {read} of 3000 mutated messages were readable; the mutations are too coarse to test the readers");
    }

    [Fact]
    public async Task Chunk_messages_with_any_numbers_read_their_rows_or_fail_with_a_dataset_error()
    {
        var parquet = Path.Combine(_dir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(parquet, new GeneratedDatasetOptions { Rows = 300, Features = 2, RowGroupRows = 100 }, Ct);
        var csv = Path.Combine(_dir, "in.csv");
        await File.WriteAllTextAsync(csv, "id,a\n" + string.Concat(Enumerable.Range(0, 300).Select(i => $"{i},{i * 0.5}\n")), Ct);
        var plans = new[] { await Dataset.PlanAsync(parquet, 100, Ct), await Dataset.PlanAsync(csv, 100, Ct) };
        var random = new Random(Seed + 2);
        for (var i = 0; i < 1_000; i++)
        {
            var plan = plans[i % 2];
            var valid = plan.Chunks[random.Next(plan.Chunks.Count)];
            var spec = valid with
            {
                RowGroup = random.Next(4) == 0 ? random.Next(-2, 6) : valid.RowGroup,
                RowStart = random.Next(4) == 0 ? Wild(random) : valid.RowStart,
                RowCount = random.Next(4) == 0 ? Wild(random) : valid.RowCount,
                ByteOffset = random.Next(4) == 0 ? Wild(random) : valid.ByteOffset,
            };
            await RunCaseAsync(() => Dataset.ReadChunkAsync(plan.Format, spec, plan.Columns, Ct), $"chunk case {i}: {spec}");
        }
    }

    [Fact]
    public async Task Parquet_and_csv_files_of_random_or_mutated_bytes_are_read_or_refused_with_a_dataset_error()
    {
        var source = Path.Combine(_dir, "source.parquet");
        await DatasetGenerator.WriteParquetAsync(source, new GeneratedDatasetOptions { Rows = 200, Features = 3, RowGroupRows = 80, NaNEvery = 7 }, Ct);
        var parquet = await File.ReadAllBytesAsync(source, Ct);
        var csv = Encoding.UTF8.GetBytes("id,name,x,flag\n1,\"a, b\",1.5,true\n2,\"multi\nline\",NaN,false\n3,,-Infinity,\n4,\"q\"\"uote\",7,true\n");
        var random = new Random(Seed + 3);
        var readable = 0;
        for (var i = 0; i < 1_600; i++)
        {
            var isCsv = i % 2 == 1;
            var bytes = Mutate(random, isCsv ? csv : parquet, i);
            var path = Path.Combine(_dir, $"case-{i % 8}.{(isCsv ? "csv" : "parquet")}");
            await File.WriteAllBytesAsync(path, bytes, Ct);
            if (await RunCaseAsync(() => ReadAllAsync(path), $"file case {i} ({path}, {bytes.Length} bytes)"))
            {
                readable++;
            }
        }

        Assert.True(readable > 50, $"only {readable} of 1600 mutated files were readable; the mutations are too coarse to reach the row readers");
    }

    private static async Task<long> ReadAllAsync(string path)
    {
        var plan = await Dataset.PlanAsync(path, 64, Ct);
        long rows = 0;
        foreach (var chunk in plan.Chunks)
        {
            rows += (await Dataset.ReadChunkAsync(plan.Format, chunk, plan.Columns, Ct)).Batch.RowCount;
        }

        return rows;
    }

    private static T? TryGet<T>(SerializerContext context)
        where T : class
    {
        // MassTransit reports a body that does not fit the message type with JsonException (the consumer never runs).
        try
        {
            return context.TryGetMessage<T>(out var message) ? message : null;
        }
        catch (Exception ex) when (ex is SerializationException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Runs one case with a time limit; the reader's own refusal counts as handled, anything else fails the test.</summary>
    private static T RunCase<T>(Func<T> read, string what, byte[] body)
    {
        var task = Task.Run(read, Ct);
        if (!task.Wait(CaseLimit, Ct))
        {
            Assert.Fail($"{what} ran for more than {CaseLimit.TotalSeconds} s (seed {Seed}): {Show(body)}");
        }

        return task.Result;
    }

    /// <summary>True when the case was read, false when the reader refused it with a <see cref="DatasetException"/> and a message.</summary>
    private static async Task<bool> RunCaseAsync<T>(Func<Task<T>> read, string what)
    {
        try
        {
            await read().WaitAsync(CaseLimit, Ct);
            return true;
        }
        catch (DatasetException ex)
        {
            Assert.False(string.IsNullOrWhiteSpace(ex.Message), $"{what}: DatasetException without a message");
            return false;
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{what} ran for more than {CaseLimit.TotalSeconds} s (seed {Seed})");
            throw;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Assert.Fail($"{what} threw {ex.GetType().Name} instead of DatasetException (seed {Seed}): {ex.Message}");
            throw;
        }
    }

    private static long Wild(Random random) => random.Next(5) switch
    {
        0 => -random.Next(1, 1_000),
        1 => random.Next(0, 400),
        2 => random.NextInt64(int.MaxValue - 10L, long.MaxValue),
        3 => random.Next(1_000, 1_000_000),
        _ => 0,
    };

    /// <summary>Random bytes, truncations, bit flips, spliced tokens and deep nesting, picked by the case number and the seed.</summary>
    private static byte[] Mutate(Random random, byte[] valid, int caseNumber)
    {
        switch (caseNumber % 10)
        {
            case 0:
                var noise = new byte[random.Next(0, 300)];
                random.NextBytes(noise);
                return noise;
            case 1:
                return valid[..random.Next(0, valid.Length)];
            case 2:
            case 3:
            case 4:
                var flipped = valid.ToArray();
                for (var k = random.Next(1, 4); k > 0 && flipped.Length > 0; k--)
                {
                    flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                }

                return flipped;
            case 5:
                var overwritten = valid.ToArray();
                var at = random.Next(overwritten.Length);
                for (var k = at; k < Math.Min(overwritten.Length, at + random.Next(1, 16)); k++)
                {
                    overwritten[k] = (byte)random.Next(256);
                }

                return overwritten;
            case 6:
            case 7:
                string[] tokens =
                [
                    "1e400", "-1e400", "99999999999999999999999", "\"\\ud800\"", "\"\\u0000\"", "null", "[]", "{}", "true", "NaN", "\"",
                    "\"rows\":[", "\"features\":{\"x\":", ",", ":", "\"requestId\":", "-0", "0.0000001e-400", "\"\\uZZZZ\"",
                ];
                var token = random.Next(3) == 0 ? [0xC3, 0x28, 0xFF, 0xFE] : Encoding.UTF8.GetBytes(tokens[random.Next(tokens.Length)]);
                var insertAt = random.Next(valid.Length + 1);
                return [.. valid[..insertAt], .. token, .. valid[insertAt..]];
            case 8:
                var depth = random.Next(1, 200);
                return Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', random.Next(2) == 0 ? depth : 0));
            default:
                var removeAt = random.Next(valid.Length);
                var removeCount = Math.Min(random.Next(1, 24), valid.Length - removeAt);
                return [.. valid[..removeAt], .. valid[(removeAt + removeCount)..]];
        }
    }

    private static string Show(byte[] body) =>
        body.Length <= 200 ? Convert.ToBase64String(body) : Convert.ToBase64String(body[..200]) + "…";
}
