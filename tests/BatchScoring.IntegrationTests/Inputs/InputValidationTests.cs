using System.Net;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.ServiceDefaults;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.IntegrationTests.Inputs;

/// <summary>
/// Input, output and model paths, hostile files and unsafe models, through the HTTP API and the job submitter of a
/// real service (PostgreSQL, RabbitMQ).
/// </summary>
public sealed class InputValidationTests(ServerFixture servers) : IDisposable
{
    private const int Features = 4;
    private const string Canary = "CANARY-41ce-root:x:0:0:root:/root:/bin/bash";

    private readonly string _root = Directory.CreateTempSubdirectory("bs-root-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("bs-outside-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    [Fact]
    public async Task Paths_outside_the_allowed_roots_are_refused_at_submit_and_paths_inside_run()
    {
        await using var host = await StartConfinedAsync("roots", ServiceRoles.All);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var input = await WriteParquetAsync(Path.Combine(_root, "in.parquet"));
        var secret = WriteCanaryFile(Path.Combine(_outside, "secret.csv"));
        File.CreateSymbolicLink(Path.Combine(_root, "passwd.csv"), secret);
        Directory.CreateSymbolicLink(Path.Combine(_root, "shared"), _outside);
        var good = new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "confined", OutputParquet = Path.Combine(_root, "out") };

        async Task AssertRefused(SubmitScoringJob request, string field, string path)
        {
            var (response, _, body) = await host.SubmitAsync(request, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains($"{field}: '{path}'", body, StringComparison.Ordinal);
            Assert.Contains(StorageRoots.SettingName, body, StringComparison.Ordinal);
            Assert.DoesNotContain("CANARY", body, StringComparison.Ordinal);
        }

        var traversal = Path.Combine(_root, "..", Path.GetFileName(_outside), "secret.csv");
        await AssertRefused(good with { Input = traversal }, "Input", traversal);
        await AssertRefused(good with { Input = secret }, "Input", secret);
        await AssertRefused(good with { Input = "/etc/passwd" }, "Input", "/etc/passwd");
        await AssertRefused(good with { Input = Path.Combine(_root, "passwd.csv") }, "Input", Path.Combine(_root, "passwd.csv"));
        await AssertRefused(good with { Input = Path.Combine(_root, "shared", "secret.csv") }, "Input", Path.Combine(_root, "shared", "secret.csv"));
        await AssertRefused(good with { OutputParquet = Path.Combine(_root, "shared", "new-out") }, "OutputParquet", Path.Combine(_root, "shared", "new-out"));
        await AssertRefused(good with { OutputParquet = Path.Combine(_outside, "out") }, "OutputParquet", Path.Combine(_outside, "out"));
        Assert.False(Directory.Exists(Path.Combine(_outside, "new-out")));

        foreach (var table in new[] { "Results", "results\"; drop table x; --", "a.b.c", "résultats", new string('t', 64), "1table", "scoring." })
        {
            var (response, _, body) = await host.SubmitAsync(good with { OutputTable = table }, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("OutputTable", body, StringComparison.Ordinal);
        }

        var (accepted, status, acceptedBody) = await host.SubmitAsync(good, Ct);
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, acceptedBody);
        Assert.Equal("succeeded", (await host.WaitForEndAsync(status!.Id, TimeSpan.FromMinutes(1), Ct)).State);
        Assert.True(File.Exists(Path.Combine(_root, "out", JobFinisher.ManifestFileName)));
    }

    [Fact]
    public async Task Errors_about_a_file_never_quote_its_contents()
    {
        // Unconfined, as by default: a caller may point a job at any file the service can read.
        await using var host = await ServiceTestHost.StartAsync(servers, "canary", ServiceRoles.Api, Ct);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var secret = WriteCanaryFile(Path.Combine(_outside, "passwd"));
        var asCsv = Path.Combine(_outside, "passwd.csv");
        File.CreateSymbolicLink(asCsv, secret);
        var asParquet = Path.Combine(_outside, "passwd.parquet");
        File.CreateSymbolicLink(asParquet, secret);
        var twoColumns = Path.Combine(_outside, "two.csv");
        await File.WriteAllTextAsync(twoColumns, $"{Canary},{Canary}\n1,2\n", Ct);

        foreach (var request in new[]
        {
            new SubmitScoringJob { Model = "m", Input = asCsv, KeyColumn = "id", OutputTable = "t" },
            new SubmitScoringJob { Model = "m", Input = asCsv, KeyColumn = Canary, OutputTable = "t" },
            new SubmitScoringJob { Model = "m", Input = asParquet, KeyColumn = "id", OutputTable = "t" },
            new SubmitScoringJob { Model = "m", Input = twoColumns, KeyColumn = "id", OutputTable = "t" },
        })
        {
            var (response, _, body) = await host.SubmitAsync(request, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(request.Input, body, StringComparison.Ordinal);
            Assert.DoesNotContain("CANARY", body.Replace($"'{Canary}'", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.DoesNotContain("/bin/bash", body.Replace($"'{Canary}'", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.DoesNotContain("second-line", body, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToHexString("CANA"u8), body, StringComparison.OrdinalIgnoreCase); // Parquet.Net quotes bytes in hex
            Assert.DoesNotContain(Convert.ToHexString("ash\n"u8), body, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Unsafe_models_and_a_model_store_outside_the_roots_are_refused_at_registration()
    {
        await using var confined = await StartConfinedAsync("modelroots", ServiceRoles.Api, modelStore: Path.Combine(_outside, "models"));
        using var outsideStore = await confined.Client.PostAsync("/api/models/m/versions", new ByteArrayContent(SampleModels.Mlp([Features, 1], seed: 2).Bytes), Ct);
        var outsideBody = await outsideStore.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, outsideStore.StatusCode);
        Assert.Contains("ModelStorePath", outsideBody, StringComparison.Ordinal);
        Assert.Contains(StorageRoots.SettingName, outsideBody, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_outside, "models")));

        await using var host = await StartConfinedAsync("unsafemodels", ServiceRoles.Api);
        var graph = new OnnxGraph("g")
            .AddInput("x", OnnxType.Tensor(OnnxDataType.Float, "N", Features))
            .AddOutput("y", OnnxType.Tensor(OnnxDataType.Float, "N", Features));
        graph.AddInitializer(OnnxTensor.ExternalFloat("W", [Features], "/etc/passwd"));
        graph.AddNode("Add", ["x", "W"], ["y"]);
        var noise = new byte[4096];
        new Random(5).NextBytes(noise);

        foreach (var (bytes, expected) in new[] { (new OnnxModel(graph).ToBytes(), "external file"), (noise, "not a valid ONNX model"), ([], "empty") })
        {
            using var response = await host.Client.PostAsync("/api/models/unsafe/versions", new ByteArrayContent(bytes), Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(expected, body, StringComparison.Ordinal);
            Assert.DoesNotContain("/etc/passwd", body, StringComparison.Ordinal);
        }

        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var count = db.CreateCommand("SELECT count(*) FROM scoring.model_versions");
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task A_tampered_stored_model_is_refused_at_submit_naming_the_hash_not_the_path()
    {
        await using var host = await StartConfinedAsync("tamper", ServiceRoles.Api);
        var registered = await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var input = await WriteParquetAsync(Path.Combine(_root, "in.parquet"));
        var stored = Path.Combine(_root, "models", $"{registered.Sha256}.onnx");
        Assert.True(File.Exists(stored));
        await File.WriteAllBytesAsync(stored, SampleModels.Mlp([Features, 1], seed: 3).Bytes, Ct);

        await using var scope = host.Services.CreateAsyncScope();
        var submitter = scope.ServiceProvider.GetRequiredService<JobSubmitter>();
        var unavailable = await Assert.ThrowsAsync<ModelUnavailableException>(() => submitter.SubmitAsync(
            new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "t" }, Ct));

        // What reaches the caller names the model and the recorded hash, not the store's path; the log keeps the path.
        Assert.Contains(registered.Sha256, unavailable.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(stored, unavailable.Message, StringComparison.Ordinal);
        var error = Assert.IsType<ModelIntegrityException>(unavailable.InnerException);
        Assert.Contains(stored, error.Message, StringComparison.Ordinal);
        Assert.Contains(registered.Sha256, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_checks_a_chunk_path_again_before_opening_it()
    {
        // No worker role: the job's own chunk messages wait in the queue while a forged one is scored by hand.
        await using var host = await StartConfinedAsync("recheck", ServiceRoles.Api);
        await host.RegisterModelAsync("m", SampleModels.Mlp([Features, 1], seed: 2).Bytes, Ct);
        var input = await WriteParquetAsync(Path.Combine(_root, "in.parquet"));
        var outsideCopy = await WriteParquetAsync(Path.Combine(_outside, "in.parquet"));
        var (_, status, body) = await host.SubmitAsync(new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "customer_id", OutputTable = "t" }, Ct);
        Assert.True(status is not null, body);

        await using var scope = host.Services.CreateAsyncScope();
        var scorer = scope.ServiceProvider.GetRequiredService<ChunkScorer>();
        var forged = new ScoreChunk(status!.Id, 0, outsideCopy, 0, 0, 100, 0);
        // The job's plan is built inside the chunk's error handling, so the escape fails the chunk (and its job) for good.
        var outcome = await scorer.ScoreAsync(forged, Ct);
        Assert.Equal(ChunkOutcome.Failed, outcome);
        var chunks = await scope.ServiceProvider.GetRequiredService<JobStore>().GetChunksAsync(status.Id, Ct);
        var reason = chunks.Single(c => c.ChunkIndex == 0).Error!;

        Assert.Contains(outsideCopy, reason, StringComparison.Ordinal);
        Assert.Contains(StorageRoots.SettingName, reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Zero_row_inputs_succeed_with_empty_outputs_and_a_SUCCESS_manifest()
    {
        await using var host = await StartConfinedAsync("zerorows", ServiceRoles.All);
        await host.RegisterModelAsync("m", SampleModels.Mlp([2, 1], seed: 2).Bytes, Ct);
        var csv = Path.Combine(_root, "header-only.csv");
        await File.WriteAllTextAsync(csv, "id,a,b\n", Ct);
        var parquet = Path.Combine(_root, "zero.parquet");
        await using (var writer = await ParquetBatchWriter.CreateAsync(
            parquet, [new SourceColumn("id", ColumnKind.Int64, false), new SourceColumn("a", ColumnKind.Float32, false), new SourceColumn("b", ColumnKind.Float32, false)], Ct))
        {
            await writer.CompleteAsync(Ct);
        }

        foreach (var (input, name) in new[] { (csv, "csv"), (parquet, "parquet") })
        {
            var output = Path.Combine(_root, $"out-{name}");
            var (response, status, body) = await host.SubmitAsync(
                new SubmitScoringJob { Model = "m", Input = input, KeyColumn = "id", OutputTable = $"zero_{name}", OutputParquet = output }, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);

            var final = await host.WaitForEndAsync(status!.Id, TimeSpan.FromMinutes(1), Ct);

            Assert.True(final.State == "succeeded", $"{name}: {final.State}: {final.Error}");
            Assert.Equal(0, final.TotalRows);
            Assert.True(File.Exists(Path.Combine(output, JobFinisher.ManifestFileName)), $"no _SUCCESS in {output}");
            await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
            await using var count = db.CreateCommand($"SELECT count(*) FROM scoring.zero_{name}");
            Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(Ct))!);
        }
    }

    [Theory]
    [InlineData("* * * * * ?", "fires every 1 s")]
    [InlineData("* 0 * * * ?", "fires every 1 s")]
    [InlineData("0 0 25 * * ?", "not a Quartz cron expression")]
    [InlineData("every hour", "not a Quartz cron expression")]
    public void A_drift_schedule_that_is_invalid_or_fires_every_second_is_refused_at_start_up(string schedule, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => ServiceHost.Build(
            new ServeSettings(ServiceRoles.Scheduler, "http://127.0.0.1:0", Migrate: false),
            configure: c => c.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Postgres"] = "Host=127.0.0.1;Port=1;Username=none",
                ["ConnectionStrings:RabbitMq"] = "amqp://guest:guest@127.0.0.1:1/",
                ["BatchScoring:Drift:Schedule"] = schedule,
            })));

        Assert.Contains("BatchScoring:Drift:Schedule", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_up_says_whether_paths_are_confined()
    {
        var logger = new ListLogger();

        StorageRootsNotice.Log(logger, StorageRoots.Unconfined);
        StorageRootsNotice.Log(logger, new StorageRoots([_root]));

        Assert.Equal(LogLevel.Warning, logger.Entries[0].Level);
        Assert.Contains("not confined", logger.Entries[0].Message, StringComparison.Ordinal);
        Assert.Contains(StorageRoots.SettingName, logger.Entries[0].Message, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Information, logger.Entries[1].Level);
        Assert.Contains(_root, logger.Entries[1].Message, StringComparison.Ordinal);
    }

    private Task<ServiceTestHost> StartConfinedAsync(string name, ServiceRoles roles, string? modelStore = null) =>
        ServiceTestHost.StartAsync(servers, name, roles, Ct, new Dictionary<string, string>
        {
            ["BatchScoring:Storage:AllowedRoots:0"] = _root,
            ["BatchScoring:ModelStorePath"] = modelStore ?? Path.Combine(_root, "models"),
        });

    private static async Task<string> WriteParquetAsync(string path)
    {
        await DatasetGenerator.WriteParquetAsync(path, new GeneratedDatasetOptions { Rows = 300, Features = Features, RowGroupRows = 100 }, Ct);
        return path;
    }

    private static string WriteCanaryFile(string path)
    {
        File.WriteAllText(path, $"{Canary}\nsecond-line:x:1:1::/:/usr/sbin/nologin\n{Canary}\n");
        return path;
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }
}
