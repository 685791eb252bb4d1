using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Scoring.OnnxWriter;
using BatchScoring.Worker.Consumers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RabbitMQ.Client;

namespace BatchScoring.Benchmarks;

/// <summary>Runs the benchmark: per workload the ceilings, then one end-to-end job through the real service.</summary>
internal sealed partial class BenchRunner(BenchSettings settings)
{
    private const string KeyColumn = "customer_id";
    private const string RegionColumn = "region";

    /// <summary>Feature data pre-built for the ONNX Runtime ceiling (cycled over).</summary>
    private const long OrtSampleBytes = 64L << 20;

    /// <summary>At most this many rows go through each ONNX Runtime ceiling loop.</summary>
    private const long MaxOrtRows = 1_000_000;

    private static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web);

    private readonly string _runId = Guid.NewGuid().ToString("N")[..10];

    public async Task<BenchReport> RunAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.WorkDir);
        var report = new BenchReport
        {
            Command = settings.CommandLine,
            Environment = new BenchEnvironment
            {
                ProcessorCount = Environment.ProcessorCount,
                Os = RuntimeInformation.OSDescription,
                Runtime = RuntimeInformation.FrameworkDescription,
                BatchRows = settings.BatchRows,
                ChunkRows = settings.ChunkRows,
                ChunkConcurrency = settings.Service.ChunkConcurrency,
                IntraOpThreads = settings.Service.IntraOpThreads,
                WorkDir = settings.WorkDir,
                LoadAverageAtStart = LoadAverage(),
            },
        };
        if (double.TryParse(report.Environment.LoadAverageAtStart?.Split(' ')[0], CultureInfo.InvariantCulture, out var load) && load > 0.5 * Environment.ProcessorCount)
        {
            Log($"warning: load average {report.Environment.LoadAverageAtStart} on {Environment.ProcessorCount} cores: other work on this machine will lower the numbers.");
        }

        var runDir = Path.Combine(settings.WorkDir, "run-" + _runId);
        var database = "bench_" + _runId;
        var benchConnection = await CreateDatabaseAsync(database, cancellationToken);
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(benchConnection);
            // The service's schema first: results tables come with a view over scoring.jobs.
            await DatabaseMigrator.MigrateAsync(dataSource, cancellationToken);
            (report.Environment.PostgresVersion, report.Environment.PostgresDurability) = await DescribePostgresAsync(dataSource, cancellationToken);
            foreach (var workload in settings.Workloads)
            {
                var result = new WorkloadResult { Name = workload.Name, Rows = workload.Rows, Features = workload.Features, Model = workload.ModelText };
                report.Workloads.Add(result);
                try
                {
                    await RunWorkloadAsync(workload, result, dataSource, benchConnection, runDir, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    result.Error = ex.Message;
                    Log($"[{workload.Name}] FAILED: {ex}");
                }
            }
        }
        finally
        {
            await DropDatabaseAsync(database);
            TryDeleteDirectory(runDir);
        }

        report.Environment.LoadAverageAtEnd = LoadAverage();
        return report;
    }

    // ---- data and models -------------------------------------------------------------------------------------

    private async Task<(string Model, string Data, string Warmup, int WarmupChunkRows)> PrepareAsync(BenchWorkload workload, CancellationToken cancellationToken)
    {
        var modelPath = Path.Combine(settings.WorkDir, $"mlp-{string.Join('-', workload.Layers)}-seed7.onnx");
        if (!File.Exists(modelPath))
        {
            Log($"[{workload.Name}] writing model {workload.ModelText} → {modelPath}");
            var names = Enumerable.Range(0, workload.Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
            var mlp = SampleModels.Mlp(workload.Layers, seed: 7, featureNames: names);
            var temp = modelPath + ".tmp";
            await File.WriteAllBytesAsync(temp, mlp.Bytes, cancellationToken);
            File.Move(temp, modelPath, overwrite: true);
        }

        var dataPath = await EnsureDatasetAsync(workload.Name, workload.Rows, workload.Features, settings.ChunkRows, cancellationToken);
        // Warm-up: two chunks, so each concurrent consumer of the worker JITs its path and loads the model before the clock runs.
        var warmupChunk = Math.Min(settings.ChunkRows, 2 * settings.BatchRows);
        var warmupPath = await EnsureDatasetAsync("warmup", 2L * warmupChunk, workload.Features, warmupChunk, cancellationToken);
        return (modelPath, dataPath, warmupPath, warmupChunk);
    }

    private async Task<string> EnsureDatasetAsync(string label, long rows, int features, int rowGroupRows, CancellationToken cancellationToken)
    {
        var path = Path.Combine(settings.WorkDir, $"data-{rows}r-{features}f-rg{rowGroupRows}", "data.parquet");
        if (File.Exists(path))
        {
            Log($"[{label}] dataset cached: {path}");
            return path;
        }

        Log($"[{label}] generating {rows:N0} rows × {features} features → {path}");
        var watch = Stopwatch.StartNew();
        // Streamed row group by row group; the file appears under its name only when complete.
        await DatasetGenerator.WriteParquetAsync(
            path, new GeneratedDatasetOptions { Rows = rows, Features = features, RowGroupRows = rowGroupRows }, cancellationToken);
        Log($"[{label}] generated in {watch.Elapsed.TotalSeconds:F1} s ({new FileInfo(path).Length / (1024.0 * 1024):F0} MiB)");
        return path;
    }

    // ---- ONNX Runtime ceiling --------------------------------------------------------------------------------

    private IReadOnlyList<(string Name, ColumnKind Kind)> MeasureOrt(
        BenchWorkload workload, string modelPath, string dataPath, WorkloadResult result, CancellationToken cancellationToken)
    {
        using var model = ScoringModel.Load(
            modelPath, new ScoringSessionOptions { IntraOpThreads = settings.Service.IntraOpThreads, PreferCuda = settings.Service.PreferCuda });
        result.ExecutionProvider = model.ExecutionProvider;
        var plan = Dataset.PlanAsync(dataPath, settings.ChunkRows, cancellationToken).GetAwaiter().GetResult();
        var mapping = model.MapInputs(
            plan.Columns.Select(c => (c.Name, c.Kind)).ToArray(),
            new InputMappingRequest { KeyColumn = KeyColumn, Passthrough = [RegionColumn] });
        var features = mapping.RequiredColumns;
        var read = new[] { KeyColumn, RegionColumn }.Concat(features).Distinct().Select(n => plan.FindColumn(n)!).ToArray();

        // Pre-build batches of the configured size (the same data the job reads), up to ~64 MiB of features.
        var sampleRows = Math.Min(plan.TotalRows, Math.Max(settings.BatchRows, OrtSampleBytes / (4L * workload.Features) / settings.BatchRows * settings.BatchRows));
        var batches = new List<(float[] RowMajor, int Rows, ColumnBatch Columns)>();
        long have = 0;
        foreach (var chunk in plan.Chunks)
        {
            if (have >= sampleRows)
            {
                break;
            }

            var source = Dataset.ReadChunkAsync(plan.Format, chunk, read, cancellationToken).GetAwaiter().GetResult().Batch;
            for (var start = 0; start < source.RowCount && have < sampleRows; start += settings.BatchRows)
            {
                var count = Math.Min(settings.BatchRows, source.RowCount - start);
                var slice = source.Slice(start, count);
                batches.Add((ToRowMajor(slice, features), count, slice));
                have += count;
            }
        }

        var target = Math.Max(have, Math.Min(workload.Rows, MaxOrtRows));
        Log($"[{workload.Name}] ONNX Runtime ceiling ({model.ExecutionProvider}, intra-op threads {(settings.Service.IntraOpThreads == 0 ? "default" : settings.Service.IntraOpThreads)}): "
            + $"{target:N0} rows in batches of {settings.BatchRows:N0}, cycling over {batches.Count} pre-built batches");
        _ = model.RunRaw(batches[0].RowMajor, batches[0].Rows);
        _ = model.Score(batches[0].Columns, mapping, cancellationToken: cancellationToken);

        var watch = Stopwatch.StartNew();
        long done = 0;
        for (var i = 0; done < target; i = (i + 1) % batches.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _ = model.RunRaw(batches[i].RowMajor, batches[i].Rows);
            done += batches[i].Rows;
        }

        result.OrtRowsPerSecond = done / watch.Elapsed.TotalSeconds;
        result.OrtMeasuredRows = done;
        Log($"[{workload.Name}]   raw Run: {result.OrtRowsPerSecond:N0} rows/s");

        watch.Restart();
        done = 0;
        for (var i = 0; done < target; i = (i + 1) % batches.Count)
        {
            var scored = model.Score(batches[i].Columns, mapping, cancellationToken: cancellationToken);
            done += scored.ScoredRows.Length;
        }

        result.ScoreRowsPerSecond = done / watch.Elapsed.TotalSeconds;
        Log($"[{workload.Name}]   Score(): {result.ScoreRowsPerSecond:N0} rows/s");
        return model.DescribeOutputs();
    }

    private static float[] ToRowMajor(ColumnBatch batch, IReadOnlyList<string> features)
    {
        var rows = batch.RowCount;
        var f = features.Count;
        var values = new float[rows * f];
        for (var c = 0; c < f; c++)
        {
            var column = batch[features[c]].As<float>();
            for (var r = 0; r < rows; r++)
            {
                values[(r * f) + c] = column[r];
            }
        }

        return values;
    }

    // ---- sink ceilings ---------------------------------------------------------------------------------------

    private async Task MeasureSinksAsync(
        BenchWorkload workload, string dataPath, IReadOnlyList<(string Name, ColumnKind Kind)> outputs, NpgsqlDataSource dataSource,
        string runDir, WorkloadResult result, CancellationToken cancellationToken)
    {
        var plan = await Dataset.PlanAsync(dataPath, settings.ChunkRows, cancellationToken);
        var key = plan.FindColumn(KeyColumn)!;
        var region = plan.FindColumn(RegionColumn)!;
        var features = Enumerable.Range(0, workload.Features).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        var read = new[] { key, region }.Concat(features.Select(n => plan.FindColumn(n)!)).ToArray();

        var table = ResultTable.Define(
            $"bench.ceiling_{workload.Name}",
            new ResultColumn(KeyColumn, key.Kind),
            [new ResultColumn(RegionColumn, region.Kind)],
            outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
        await table.EnsureCreatedAsync(dataSource, cancellationToken);
        var context = new ResultRowContext(Guid.NewGuid(), null, $"bench_{workload.Name}", 1, DateTimeOffset.UtcNow);
        var partColumns = ChunkScorer.PartColumns([key, region], outputs);
        var partDir = Path.Combine(runDir, $"parquet-ceiling-{workload.Name}");

        Log($"[{workload.Name}] sink ceilings: Parquet read, COPY into {table.QualifiedName} (one transaction per {settings.ChunkRows:N0}-row chunk, one COPY per {settings.BatchRows:N0} rows), Parquet write");
        var random = new Random(11);

        // Warm-up (JIT, connection pool, first page of the table): read one chunk, COPY one batch and roll back, write one part file.
        var first = (await Dataset.ReadChunkAsync(plan.Format, plan.Chunks[0], read, cancellationToken)).Batch;
        var warmCount = Math.Min(settings.BatchRows, first.RowCount);
        var warm = new ColumnBatch(
            [first[KeyColumn].Slice(0, warmCount), first[RegionColumn].Slice(0, warmCount), .. outputs.Select(o => new BatchColumn(o.Name, o.Kind, RandomValues(o.Kind, warmCount, random)))]);
        first = null;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await table.CopyAsync(connection, context, warm, cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        }

        await WritePartAsync(Path.Combine(partDir, "warm-up.parquet"), partColumns, [warm], context, cancellationToken);

        TimeSpan readTime = default, copyTime = default, parquetTime = default;
        double copyClientCpu = 0, copyServerCpu = 0;
        long rows = 0;
        var watch = new Stopwatch();
        foreach (var chunk in plan.Chunks)
        {
            watch.Restart();
            var source = (await Dataset.ReadChunkAsync(plan.Format, chunk, read, cancellationToken)).Batch;
            readTime += watch.Elapsed;

            // The worker's output rows: key and passthrough of each batch slice plus the model outputs.
            var n = source.RowCount;
            var outputColumns = outputs.Select(o => new BatchColumn(o.Name, o.Kind, RandomValues(o.Kind, n, random))).ToArray();
            var slices = new List<ColumnBatch>();
            for (var start = 0; start < n; start += settings.BatchRows)
            {
                var count = Math.Min(settings.BatchRows, n - start);
                slices.Add(new ColumnBatch([source[KeyColumn].Slice(start, count), source[RegionColumn].Slice(start, count), .. outputColumns.Select(c => c.Slice(start, count))]));
            }

            source = null;
            var clientCpuBefore = ProcessCpuSeconds();
            var serverCpuBefore = WorkerProcess.PostgresCpuSeconds();
            watch.Restart();
            await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
            await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
            {
                foreach (var slice in slices)
                {
                    await table.CopyAsync(connection, context, slice, cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
            }

            copyTime += watch.Elapsed;
            copyClientCpu += ProcessCpuSeconds() - clientCpuBefore;
            copyServerCpu += WorkerProcess.PostgresCpuSeconds() - serverCpuBefore;

            watch.Restart();
            await WritePartAsync(Path.Combine(partDir, ChunkScorer.PartFileName(chunk.Index)), partColumns, slices, context, cancellationToken);
            parquetTime += watch.Elapsed;
            rows += n;
        }

        result.ParquetReadRowsPerSecond = rows / readTime.TotalSeconds;
        result.CopyRowsPerSecond = rows / copyTime.TotalSeconds;
        result.ParquetWriteRowsPerSecond = rows / parquetTime.TotalSeconds;
        result.CopyClientCpuSeconds = copyClientCpu;
        result.CopyPostgresCpuSeconds = copyServerCpu;
        result.CopySeconds = copyTime.TotalSeconds;
        Log($"[{workload.Name}]   Parquet read {result.ParquetReadRowsPerSecond:N0} rows/s; COPY {result.CopyRowsPerSecond:N0} rows/s; Parquet write {result.ParquetWriteRowsPerSecond:N0} rows/s ({rows:N0} rows; COPY {copyTime.TotalSeconds:F2} s wall, client CPU {copyClientCpu:F2} s, postgres CPU {copyServerCpu:F2} s)");
        TryDeleteDirectory(partDir);
        await using (var drop = dataSource.CreateCommand($"DROP TABLE {table.QuotedName} CASCADE"))
        {
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static Array RandomValues(ColumnKind kind, int count, Random random)
    {
        switch (kind)
        {
            case ColumnKind.Float32:
                var floats = new float[count];
                for (var i = 0; i < count; i++)
                {
                    floats[i] = random.NextSingle();
                }

                return floats;
            case ColumnKind.Float64:
                var doubles = new double[count];
                for (var i = 0; i < count; i++)
                {
                    doubles[i] = random.NextDouble();
                }

                return doubles;
            case ColumnKind.Int64:
                var longs = new long[count];
                for (var i = 0; i < count; i++)
                {
                    longs[i] = random.NextInt64(10);
                }

                return longs;
            default:
                throw new NotSupportedException($"The benchmark fills only float and int64 model outputs, not {kind}.");
        }
    }

    /// <summary>The same part file the worker writes for a chunk (result rows plus lineage columns, one row group).</summary>
    private static async Task WritePartAsync(
        string path, IReadOnlyList<SourceColumn> columns, List<ColumnBatch> parts, ResultRowContext context, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetBatchWriter.CreateAsync(path, columns, cancellationToken);
        var rows = ColumnBatch.Concat(parts);
        var n = rows.RowCount;
        var lineage = new List<BatchColumn>(rows.Columns)
        {
            new("job_id", ColumnKind.String, Enumerable.Repeat(context.JobId!.Value.ToString(), n).ToArray()),
            new("model_name", ColumnKind.String, Enumerable.Repeat(context.ModelName, n).ToArray()),
            new("model_version", ColumnKind.Int32, Enumerable.Repeat(context.ModelVersion, n).ToArray()),
            new("scored_at", ColumnKind.Timestamp, Enumerable.Repeat(context.ScoredAt.UtcDateTime, n).ToArray()),
        };
        await writer.WriteAsync(new ColumnBatch(lineage), cancellationToken);
        await writer.CompleteAsync(cancellationToken);
    }

    // ---- servers ---------------------------------------------------------------------------------------------

    private async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken)
    {
        await using (var connection = new NpgsqlConnection(settings.PostgresConnectionString))
        {
            try
            {
                await connection.OpenAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException)
            {
                throw new InvalidOperationException($"Cannot connect to PostgreSQL (ConnectionStrings__Postgres): {ex.Message}", ex);
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
                    await create.ExecuteNonQueryAsync(cancellationToken);
                    break;
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 10)
                {
                    // "source database template1 is being accessed by other users"
                    await Task.Delay(200 * attempt, cancellationToken);
                }
            }
        }

        Log($"created database {name}");
        return new NpgsqlConnectionStringBuilder(settings.PostgresConnectionString) { Database = name }.ConnectionString;
    }

    private async Task DropDatabaseAsync(string name)
    {
        try
        {
            NpgsqlConnection.ClearAllPools();
            await using var connection = new NpgsqlConnection(settings.PostgresConnectionString);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
            Log($"dropped database {name}");
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            Log($"warning: could not drop database {name}: {ex.Message}");
        }
    }

    private static async Task<(string? Version, string? Durability)> DescribePostgresAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetString(0), $"fsync={reader.GetString(1)}, synchronous_commit={reader.GetString(2)}, full_page_writes={reader.GetString(3)}");
    }

    /// <summary>Removes the run's endpoint queues and exchanges from the broker (best effort).</summary>
    private async Task DeleteQueuesAsync(string prefix)
    {
        try
        {
            var factory = new ConnectionFactory { Uri = new Uri(settings.RabbitMqUri) };
            await using var connection = await factory.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            foreach (var name in new[] { ChunkDispatcher.QueueName, SubmitScoringJobConsumer.QueueName })
            {
                foreach (var suffix in new[] { "", "_error", "_skipped" })
                {
                    await channel.QueueDeleteAsync(prefix + name + suffix, ifUnused: false, ifEmpty: false);
                    await channel.ExchangeDeleteAsync(prefix + name + suffix, ifUnused: false);
                }
            }
        }
        catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.RabbitMQClientException or RabbitMQ.Client.Exceptions.OperationInterruptedException or IOException)
        {
            Log($"warning: could not delete the bench queues ({prefix}*): {ex.Message}");
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static double ProcessCpuSeconds()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.TotalSeconds;
    }

    private static string? LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // best effort
        }
    }

    internal static void Log(string message) =>
        Console.Error.WriteLine($"{DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} bench: {message}");
}
