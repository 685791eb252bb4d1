using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;

namespace BatchScoring.Benchmarks;

/// <summary>
/// End to end as a user runs it: one `batchscore serve` child process with all roles, jobs submitted with the real
/// CLI (`batchscore jobs submit ... --wait --json`, a child process) and timed from its start to its exit; on the
/// light workload, each dataset variant is also scored by the peer script (another child process) and the two
/// results tables are compared.
/// </summary>
internal sealed partial class BenchRunner
{
    private const string ModelOutputColumn = "score";
    private const int OverheadRows = 10;
    private const int LargeJobFactor = 10;
    private static readonly TimeSpan JobTimeout = TimeSpan.FromHours(1);

    private async Task RunWorkloadAsync(
        BenchWorkload workload, WorkloadResult result, NpgsqlDataSource dataSource, string benchConnection, string runDir, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var (modelPath, dataPath, warmupPath, warmupChunkRows) = await PrepareAsync(workload, cancellationToken);
        var light = workload.Name == "light";
        // Every file is written before any clock runs (DuckDB caches nothing between runs: the files are cached by name).
        var variants = new List<(DatasetVariant Variant, VariantResult Result, string? Path)>();
        foreach (var variant in light ? settings.Variants : [])
        {
            var variantResult = new VariantResult { Name = variant.Name, Description = variant.Describe(settings.ChunkRows) };
            result.Variants.Add(variantResult);
            try
            {
                var path = variant.Generated ? dataPath : DuckDbFiles.Ensure(variant, dataPath);
                variantResult.File = path;
                variantResult.FileMiB = new FileInfo(path).Length / 1048576.0;
                if (!variant.Csv)
                {
                    (var count, var min, var max) = DuckDbFiles.RowGroups(path);
                    (variantResult.RowGroups, variantResult.RowGroupRowsMin, variantResult.RowGroupRowsMax) = (count, min, max);
                }

                var (rows, _) = await DuckDbFiles.CheckReadableAsync(path, settings.Service.DefaultChunkRows, cancellationToken);
                if (rows != workload.Rows)
                {
                    throw new InvalidOperationException($"the service's reader sees {rows:N0} rows in {path}, DuckDB wrote {workload.Rows:N0}.");
                }

                variants.Add((variant, variantResult, path));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                variantResult.Error = ex.Message;
                Log($"[{variant.Name}] FAILED: {ex.Message}");
            }
        }

        string? largePath = null;
        if (light && settings.LargeJob)
        {
            result.LargeJob = new LargeJobResult { Rows = workload.Rows * LargeJobFactor };
            try
            {
                largePath = DuckDbFiles.Ensure(LargeJobVariant, dataPath, LargeJobFactor);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                result.LargeJob.Error = ex.Message;
            }
        }

        result.GenerateSeconds = watch.Elapsed.TotalSeconds;

        var outputs = MeasureOrt(workload, modelPath, dataPath, result, cancellationToken);
        await MeasureSinksAsync(workload, dataPath, outputs, dataSource, runDir, result, cancellationToken);
        result.SerialCeilingRowsPerSecond = 1 / (1 / result.OrtRowsPerSecond + 1 / result.CopyRowsPerSecond);
        result.SerialCeilingWithParquetRowsPerSecond = 1 / (1 / result.OrtRowsPerSecond + 1 / result.CopyRowsPerSecond + 1 / result.ParquetWriteRowsPerSecond);

        await MeasureEndToEndAsync(workload, modelPath, dataPath, warmupPath, warmupChunkRows, variants, largePath, dataSource, benchConnection, runDir, result, cancellationToken);
        AddTargets(workload, result);
    }

    /// <summary>The variant the large job is written as: the row groups of the issue's report (16k).</summary>
    private static DatasetVariant LargeJobVariant => DatasetVariant.Known.First(v => v.Name == "rg16k");

    private static void AddTargets(BenchWorkload workload, WorkloadResult result)
    {
        foreach (var v in result.Variants.Where(v => v.Service is not null && v.Error is null))
        {
            result.Targets.Add(new TargetResult($"light {v.Name}: service ≥ 2.0 × peer", "≥ 2.00", v.RatioToPeer, v.RatioToPeer >= 2.0));
            result.Targets.Add(new TargetResult($"light {v.Name}: service ≥ 1.0 × serial ceiling", "≥ 1.00", v.RatioToSerialCeiling, v.RatioToSerialCeiling >= 1.0));
        }

        if (workload.Name == "heavy" && result.EndToEnd is { } heavy)
        {
            result.Targets.Add(new TargetResult("heavy: e2e ≥ 0.85 × raw ONNX Runtime", "≥ 0.85", heavy.RatioToOrt, heavy.RatioToOrt >= 0.85));
        }

        if (result.Overhead is { Error: null, Runs: > 0 } overhead)
        {
            result.Targets.Add(new TargetResult("10-row job, submit → --wait returns", "< 0.300 s", overhead.MedianSeconds, overhead.MedianSeconds < 0.3));
        }

        if (result.LargeJob is { Error: null, Job: { } large } largeJob)
        {
            result.Targets.Add(new TargetResult("large job: rows/s within 10 % of the 1× job", "≥ 0.90", largeJob.RatioOfRowsPerSecond, largeJob.RatioOfRowsPerSecond >= 0.9));
            result.Targets.Add(new TargetResult("worker peak RSS < 1 GiB (large job)", "< 1024 MiB", large.WorkerPeakRssMiB, large.WorkerPeakRssMiB < 1024));
        }

        var jobs = new[] { result.EndToEnd, result.EndToEndWithParquet }.Concat(result.Variants.Select(v => v.Service)).OfType<EndToEndResult>().ToArray();
        if (jobs.Length > 0)
        {
            var peak = jobs.Max(j => j.WorkerPeakRssMiB);
            result.Targets.Add(new TargetResult("worker peak RSS < 1 GiB", "< 1024 MiB", peak, peak < 1024));
        }
    }

    private async Task MeasureEndToEndAsync(
        BenchWorkload workload, string modelPath, string dataPath, string warmupPath, int warmupChunkRows,
        IReadOnlyList<(DatasetVariant Variant, VariantResult Result, string? Path)> variants, string? largePath,
        NpgsqlDataSource dataSource, string benchConnection, string runDir, WorkloadResult result, CancellationToken cancellationToken)
    {
        var prefix = $"bench-{_runId}-{workload.Name}-";
        var environment = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Postgres"] = benchConnection,
            ["ConnectionStrings__RabbitMq"] = settings.RabbitMqUri,
            ["BatchScoring__ModelStorePath"] = Path.Combine(runDir, "models"),
            ["BatchScoring__QueuePrefix"] = prefix,
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__Console__LogToStandardErrorThreshold"] = "Trace",
        };

        Log($"[{workload.Name}] end to end: `batchscore serve` (all roles) as a child process, jobs through the `batchscore` CLI (queue prefix {prefix})");
        try
        {
            await using var serve = WorkerProcess.Start(environment, Path.Combine(settings.WorkDir, $"serve-{workload.Name}.log"));
            await serve.WaitReadyAsync(TimeSpan.FromSeconds(120), cancellationToken);
            Log($"[{workload.Name}]   serve pid {serve.Id} ready on {serve.BaseAddress} (log {serve.LogPath}); RSS {serve.RssBytes / 1048576.0:F0} MiB");

            var modelName = $"bench-{workload.Name}";
            await RegisterModelAsync(serve.BaseAddress, modelName, modelPath, cancellationToken);

            var explicitChunking = new[] { "--chunk-rows", Invariant(settings.ChunkRows), "--batch-rows", Invariant(settings.BatchRows) };
            var warmup = await RunJobAsync(serve, modelName, warmupPath, $"bench_{workload.Name}_warmup", "warm-up", ["--chunk-rows", Invariant(warmupChunkRows)], result, cancellationToken);
            Log($"[{workload.Name}]   warm-up job: {warmup.ScoredRows:N0} rows in {warmup.Seconds:F2} s");
            if (variants.Any(v => v.Variant.Csv))
            {
                // The CSV reader's code path, JIT-compiled before any clock runs.
                _ = await RunJobAsync(serve, modelName, DuckDbFiles.EnsureHead(dataPath, 1000, csv: true), $"bench_{workload.Name}_warmup_csv", "warm-up (CSV)", [], result, cancellationToken);
            }

            // The light workload's generated file is its `gen` variant (compared with the peer too).
            if (workload.Name != "light")
            {
                var e2e = await RunJobAsync(serve, modelName, dataPath, $"bench_{workload.Name}", "table", explicitChunking, result, cancellationToken);
                e2e.CeilingRowsPerSecond = result.SerialCeilingRowsPerSecond;
                e2e.RatioToSerialCeiling = e2e.RowsPerSecond / result.SerialCeilingRowsPerSecond;
                e2e.RatioToOrt = e2e.RowsPerSecond / result.OrtRowsPerSecond;
                result.EndToEnd = e2e;
                LogJob(workload, e2e);
            }

            foreach (var (variant, variantResult, path) in variants)
            {
                try
                {
                    await RunVariantAsync(workload, variant, variantResult, path!, serve, modelName, modelPath, dataSource, benchConnection, result, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    variantResult.Error = ex.Message;
                    Log($"[{variant.Name}] FAILED: {ex.Message}");
                }
            }

            result.EndToEnd ??= variants.FirstOrDefault(v => v.Variant.Generated).Result?.Service;
            if (settings.Parquet)
            {
                var parquetDir = Path.Combine(runDir, $"out-{workload.Name}");
                var withParquet = await RunJobAsync(
                    serve, modelName, dataPath, $"bench_{workload.Name}_pq", "table+parquet", [.. explicitChunking, "--output-parquet", parquetDir], result, cancellationToken);
                withParquet.CeilingRowsPerSecond = result.SerialCeilingWithParquetRowsPerSecond;
                withParquet.RatioToSerialCeiling = withParquet.RowsPerSecond / result.SerialCeilingWithParquetRowsPerSecond;
                withParquet.RatioToOrt = withParquet.RowsPerSecond / result.OrtRowsPerSecond;
                result.EndToEndWithParquet = withParquet;
                LogJob(workload, withParquet);
                TryDeleteDirectory(parquetDir);
            }

            if (workload.Name == "light" && settings.OverheadRuns > 0)
            {
                result.Overhead = await MeasureOverheadAsync(serve, modelName, dataPath, result, cancellationToken);
            }

            if (result.LargeJob is { Error: null } large && largePath is not null)
            {
                await RunLargeJobAsync(workload, large, largePath, serve, modelName, dataSource, result, cancellationToken);
            }
        }
        finally
        {
            await DeleteQueuesAsync(prefix);
        }
    }

    private async Task RunVariantAsync(
        BenchWorkload workload, DatasetVariant variant, VariantResult variantResult, string path, WorkerProcess serve, string modelName, string modelPath,
        NpgsqlDataSource dataSource, string benchConnection, WorkloadResult result, CancellationToken cancellationToken)
    {
        var serviceTable = $"scoring.bench_{workload.Name}_{variant.Name}";
        var peerTable = $"public.peer_{workload.Name}_{variant.Name}";
        // As a user submits it: the service's defaults for chunk and batch sizes.
        var job = variant.Generated
            ? await RunJobAsync(serve, modelName, path, serviceTable["scoring.".Length..], variant.Name, ["--chunk-rows", Invariant(settings.ChunkRows), "--batch-rows", Invariant(settings.BatchRows)], result, cancellationToken)
            : await RunJobAsync(serve, modelName, path, serviceTable["scoring.".Length..], variant.Name, [], result, cancellationToken);
        job.CeilingRowsPerSecond = result.SerialCeilingRowsPerSecond;
        job.RatioToSerialCeiling = job.RowsPerSecond / result.SerialCeilingRowsPerSecond;
        job.RatioToOrt = job.RowsPerSecond / result.OrtRowsPerSecond;
        variantResult.Service = job;
        LogJob(workload, job);

        Log($"[{variant.Name}]   peer script: DuckDB → ONNX Runtime (8,192-row batches) → text COPY into {peerTable}");
        var peer = await ChildCommand.RunAsync(
            typeof(PeerScript).Assembly.Location,
            ["peer", "--input", path, "--model", modelPath, "--table", peerTable, "--batch-rows", "8192"],
            new Dictionary<string, string?> { ["ConnectionStrings__Postgres"] = benchConnection, ["DOTNET_TieredCompilation"] = "1" },
            JobTimeout,
            cancellationToken);
        if (peer.ExitCode != 0)
        {
            throw new InvalidOperationException($"the peer script exited with {peer.ExitCode}: {peer.Stderr.Trim()}");
        }

        variantResult.Peer = JsonSerializer.Deserialize<PeerResult>(peer.Stdout.Trim().Split('\n')[^1], BenchCommand.JsonOptions);
        variantResult.PeerSeconds = peer.Seconds;
        variantResult.PeerRowsPerSecond = (variantResult.Peer?.Rows ?? 0) / peer.Seconds;
        variantResult.RatioToPeer = job.RowsPerSecond / variantResult.PeerRowsPerSecond;
        variantResult.RatioToSerialCeiling = job.RatioToSerialCeiling;
        Log($"[{variant.Name}]   peer: {variantResult.Peer?.Rows:N0} rows in {peer.Seconds:F2} s = {variantResult.PeerRowsPerSecond:N0} rows/s "
            + $"(read {variantResult.Peer?.ReadSeconds:F1} s, ORT {variantResult.Peer?.InferSeconds:F1} s, COPY {variantResult.Peer?.CopySeconds:F1} s); service ÷ peer {variantResult.RatioToPeer:F2}×");

        (variantResult.ResultsMatch, variantResult.Checksum) = await CompareTablesAsync(dataSource, serviceTable, peerTable, cancellationToken);
        Log($"[{variant.Name}]   results {(variantResult.ResultsMatch == true ? "match" : "DIFFER")}: {variantResult.Checksum}");
        if (variantResult.ResultsMatch != true)
        {
            variantResult.Error = $"the service's results differ from the peer's: {variantResult.Checksum}";
        }

        await DropTablesAsync(dataSource, cancellationToken, serviceTable, peerTable);
    }

    /// <summary>Row counts, Σ score (exact, as numeric) and the largest per-key difference of the two tables.</summary>
    private static async Task<(bool Match, string Checksum)> CompareTablesAsync(
        NpgsqlDataSource dataSource, string serviceTable, string peerTable, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            $"""
            SELECT (SELECT count(*) FROM {serviceTable}), (SELECT count(*) FROM {peerTable}),
                   (SELECT sum({ModelOutputColumn}::numeric) FROM {serviceTable})::float8, (SELECT sum({ModelOutputColumn}::numeric) FROM {peerTable})::float8,
                   count(*), coalesce(max(abs(s.{ModelOutputColumn} - p.{ModelOutputColumn})), 0)::float8,
                   count(*) FILTER (WHERE s.{KeyColumn}::text IS DISTINCT FROM p.{KeyColumn}::text OR s.{RegionColumn} IS DISTINCT FROM p.{RegionColumn})
            FROM {serviceTable} s JOIN {peerTable} p ON s.{KeyColumn} = p.{KeyColumn}
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var (serviceRows, peerRows, serviceSum, peerSum) = (reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? 0 : reader.GetDouble(2), reader.IsDBNull(3) ? 0 : reader.GetDouble(3));
        var (joined, maxDiff, passthroughDiffer) = (reader.GetInt64(4), reader.GetDouble(5), reader.GetInt64(6));
        var match = serviceRows == peerRows && joined == serviceRows && maxDiff <= 1e-5 && passthroughDiffer == 0
            && Math.Abs(serviceSum - peerSum) <= 1e-5 * Math.Max(1, serviceRows);
        var checksum = string.Create(
            CultureInfo.InvariantCulture,
            $"service {serviceRows:N0} rows Σ{ModelOutputColumn} {serviceSum:F4}; peer {peerRows:N0} rows Σ{ModelOutputColumn} {peerSum:F4}; {joined:N0} keys in both, max |Δ| {maxDiff:G3}");
        return (match, checksum);
    }

    private static async Task DropTablesAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken, params string[] tables)
    {
        await using var drop = dataSource.CreateCommand($"DROP TABLE IF EXISTS {string.Join(", ", tables)} CASCADE");
        await drop.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<OverheadResult> MeasureOverheadAsync(WorkerProcess serve, string modelName, string dataPath, WorkloadResult result, CancellationToken cancellationToken)
    {
        var overhead = new OverheadResult { Rows = OverheadRows, Runs = settings.OverheadRuns };
        try
        {
            var path = DuckDbFiles.EnsureHead(dataPath, OverheadRows);
            var startups = new List<double>();
            for (var i = 0; i < 3; i++)
            {
                var version = await ChildCommand.RunAsync(CliAssembly, ["--version"], null, TimeSpan.FromMinutes(1), cancellationToken);
                startups.Add(version.Seconds);
            }

            overhead.CliStartupMedianSeconds = Stats.Median(startups);
            var walls = new List<double>();
            var spans = new List<double>();
            const int WarmupRuns = 2;
            for (var i = 0; i < WarmupRuns + settings.OverheadRuns; i++)
            {
                var job = await RunJobAsync(serve, modelName, path, $"bench_overhead_{i}", "10-row", [], result, cancellationToken, scrape: false);
                if (i >= WarmupRuns)
                {
                    walls.Add(job.Seconds);
                    if (job.ServerSeconds is { } s)
                    {
                        spans.Add(s);
                    }
                }
            }

            overhead.MedianSeconds = Stats.Median(walls);
            overhead.MinSeconds = walls.Min();
            overhead.MaxSeconds = walls.Max();
            overhead.MedianServerSeconds = spans.Count > 0 ? Stats.Median(spans) : null;
            Log($"[light] 10-row job, submit → return: median {overhead.MedianSeconds * 1000:F0} ms of {walls.Count} (min {overhead.MinSeconds * 1000:F0}, max {overhead.MaxSeconds * 1000:F0}); "
                + $"server span {overhead.MedianServerSeconds * 1000:F0} ms; CLI start-up {overhead.CliStartupMedianSeconds * 1000:F0} ms");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            overhead.Error = ex.Message;
            Log($"[light] overhead case FAILED: {ex.Message}");
        }

        return overhead;
    }

    private async Task RunLargeJobAsync(
        BenchWorkload workload, LargeJobResult large, string path, WorkerProcess serve, string modelName, NpgsqlDataSource dataSource, WorkloadResult result,
        CancellationToken cancellationToken)
    {
        try
        {
            var compared = result.Variants.FirstOrDefault(v => v.Name == LargeJobVariant.Name && v.Service is not null)
                ?? result.Variants.FirstOrDefault(v => v.Service is not null);
            var table = $"bench_{workload.Name}_large";
            var job = await RunJobAsync(serve, modelName, path, table, $"{LargeJobFactor}× rows ({LargeJobVariant.Name})", [], result, cancellationToken);
            job.CeilingRowsPerSecond = result.SerialCeilingRowsPerSecond;
            job.RatioToSerialCeiling = job.RowsPerSecond / result.SerialCeilingRowsPerSecond;
            job.RatioToOrt = job.RowsPerSecond / result.OrtRowsPerSecond;
            large.Job = job;
            if (compared?.Service is { } small)
            {
                large.ComparedWith = compared.Name;
                large.RatioOfRowsPerSecond = job.RowsPerSecond / small.RowsPerSecond;
            }

            LogJob(workload, job);
            await DropTablesAsync(dataSource, cancellationToken, "scoring." + table);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            large.Error = ex.Message;
            Log($"[light] large job FAILED: {ex.Message}");
        }
    }

    private string CliAssembly => settings.CliPath ?? typeof(BatchScoring.Cli.Hosting.ServiceHost).Assembly.Location;

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static async Task RegisterModelAsync(Uri api, string name, string modelPath, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = api, Timeout = TimeSpan.FromMinutes(2) };
        using var content = new ByteArrayContent(await File.ReadAllBytesAsync(modelPath, cancellationToken));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.PostAsync($"/api/models/{name}/versions", content, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException(
                $"Registering model {name} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
    }

    /// <summary>
    /// `batchscore jobs submit ... --wait --json` as a child process, timed from its start to its exit; the worker's
    /// metrics, CPU and peak RSS around it.
    /// </summary>
    private async Task<EndToEndResult> RunJobAsync(
        WorkerProcess serve, string model, string input, string table, string outputs, IEnumerable<string> extra, WorkloadResult workload,
        CancellationToken cancellationToken, bool scrape = true)
    {
        var before = scrape ? await serve.ScrapeAsync(cancellationToken) : [];
        var cpuBefore = serve.CpuSeconds;
        var postgresBefore = WorkerProcess.PostgresCpuSeconds();
        var peakReset = serve.ResetPeakRss();

        string[] arguments =
        [
            "jobs", "submit", "--api", serve.BaseAddress.ToString(), "--model", model, "--input", input, "--key-column", KeyColumn,
            "--passthrough", RegionColumn, "--output-table", $"scoring.{table}", .. extra, "--wait", "--json",
        ];
        var run = await ChildCommand.RunAsync(CliAssembly, arguments, null, JobTimeout, cancellationToken);
        var cpuAfter = serve.CpuSeconds;
        var postgresAfter = WorkerProcess.PostgresCpuSeconds();
        var after = scrape ? await serve.ScrapeAsync(cancellationToken) : [];
        var status = ParseStatus(run.Stdout);
        if (run.ExitCode != 0 || status is null || status.Value.GetProperty("state").GetString() != "succeeded")
        {
            if (serve.HasExited)
            {
                throw new InvalidOperationException($"The serve process exited during the {outputs} job:\n{serve.LogTail()}");
            }

            throw new InvalidOperationException(
                $"`batchscore jobs submit` for the {outputs} job exited with {run.ExitCode}: {run.Stderr.Trim().Split('\n')[^1]}\nserve log:\n{serve.LogTail(15)}");
        }

        var s = status.Value;
        double Delta(string name) => after.GetValueOrDefault(name) - before.GetValueOrDefault(name);
        var calls = Delta("batchscoring_batch_size_rows_count");
        var scored = s.GetProperty("scoredRows").GetInt64();
        var failed = s.GetProperty("failedRows").GetInt64();
        var created = s.GetProperty("createdAt").GetDateTimeOffset();
        var finished = s.TryGetProperty("finishedAt", out var f) && f.ValueKind == JsonValueKind.String ? f.GetDateTimeOffset() : (DateTimeOffset?)null;
        return new EndToEndResult
        {
            Outputs = outputs,
            JobId = s.GetProperty("id").GetGuid(),
            Seconds = run.Seconds,
            ServerSeconds = finished is { } end ? (end - created).TotalSeconds : null,
            ScoredRows = scored,
            FailedRows = failed,
            Chunks = s.GetProperty("chunksTotal").GetInt32(),
            RowsPerSecond = (scored + failed) / run.Seconds,
            Stages = StageSeconds(s),
            InferenceCalls = (long)calls,
            AverageBatchRows = calls > 0 ? Delta("batchscoring_batch_size_rows_sum") / calls : 0,
            WorkerInferenceSeconds = Delta("batchscoring_inference_duration_seconds_sum"),
            WorkerCopySeconds = Delta("batchscoring_db_copy_duration_seconds_sum"),
            WorkerCpuSeconds = cpuAfter - cpuBefore,
            PostgresCpuSeconds = postgresAfter - postgresBefore,
            WorkerPeakRssMiB = serve.PeakRssBytes / 1048576.0,
            WorkerRssAfterMiB = serve.RssBytes / 1048576.0,
            PeakRssSinceStart = !peakReset,
        };
    }

    /// <summary>The job status JSON the CLI prints last with `--wait --json` (null when there is none).</summary>
    internal static JsonElement? ParseStatus(string stdout)
    {
        var start = stdout.IndexOf('{', StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(stdout[start..]);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Seconds per stage from a job status, when the service reports them: the numbers under the first property whose
    /// name starts with "stage" (an object of name → seconds, or a list of objects with a name and seconds).
    /// </summary>
    internal static Dictionary<string, double>? StageSeconds(JsonElement status)
    {
        foreach (var property in status.EnumerateObject())
        {
            if (!property.Name.StartsWith("stage", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var stages = new Dictionary<string, double>(StringComparer.Ordinal);
            if (property.Value.ValueKind == JsonValueKind.Object)
            {
                foreach (var stage in property.Value.EnumerateObject())
                {
                    if (stage.Value.ValueKind == JsonValueKind.Number)
                    {
                        stages[stage.Name] = stage.Value.GetDouble();
                    }
                }
            }
            else if (property.Value.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in property.Value.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    string? name = null;
                    double? seconds = null;
                    foreach (var field in item.EnumerateObject())
                    {
                        if (field.Value.ValueKind == JsonValueKind.String && field.Name is "name" or "stage")
                        {
                            name = field.Value.GetString();
                        }
                        else if (field.Value.ValueKind == JsonValueKind.Number && field.Name.Contains("seconds", StringComparison.OrdinalIgnoreCase))
                        {
                            seconds = field.Value.GetDouble();
                        }
                    }

                    if (name is not null && seconds is not null)
                    {
                        stages[name] = seconds.Value;
                    }
                }
            }

            return stages.Count > 0 ? stages : null;
        }

        return null;
    }

    private static void LogJob(BenchWorkload workload, EndToEndResult e2e) =>
        Log($"[{workload.Name}]   {e2e.Outputs} job: {e2e.ScoredRows:N0} rows in {e2e.Seconds:F2} s = {e2e.RowsPerSecond:N0} rows/s "
            + $"({e2e.RatioToSerialCeiling:F2}× serial ceiling, {e2e.RatioToOrt:F2}× ORT; server span {e2e.ServerSeconds:F2} s, {e2e.Chunks} chunks); avg batch {e2e.AverageBatchRows:N0}; "
            + $"serve CPU {e2e.WorkerCpuSeconds:F1} s, ORT {e2e.WorkerInferenceSeconds:F1} s, COPY {e2e.WorkerCopySeconds:F1} s; peak RSS {e2e.WorkerPeakRssMiB:F0} MiB"
            + (e2e.Stages is { } stages ? "; stages " + string.Join(", ", stages.Select(kv => $"{kv.Key} {kv.Value:F2} s")) : ""));
}
