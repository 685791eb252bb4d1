using System.Text.Json;

namespace BatchScoring.Benchmarks.Tests;

/// <summary>The report's logic: the variant ratio table, stage seconds from `jobs status --json`, the reproducing command.</summary>
public sealed class ReportTests
{
    [Fact]
    public void The_variant_table_shows_each_variants_ratios_and_whether_the_results_matched()
    {
        var workload = new WorkloadResult { Name = "light", Rows = 1_000_000, Features = 64, Model = "MLP 64-256-256-1", SerialCeilingRowsPerSecond = 200_000 };
        workload.Variants.Add(new VariantResult
        {
            Name = "rg16k",
            Description = "",
            File = "/tmp/f.parquet",
            FileMiB = 250,
            RowGroups = 62,
            RowGroupRowsMin = 576,
            RowGroupRowsMax = 16_384,
            Service = new EndToEndResult { Outputs = "rg16k", Seconds = 4, ServerSeconds = 3.5, Chunks = 20, RowsPerSecond = 250_000, WorkerPeakRssMiB = 480, WorkerCpuSeconds = 5.5, PostgresCpuSeconds = 1.5 },
            Peer = new PeerResult(1_000_000, 9.5, 1, 5, 3.5),
            PeerSeconds = 10,
            PeerRowsPerSecond = 100_000,
            RatioToPeer = 2.5,
            RatioToSerialCeiling = 1.25,
            ResultsMatch = true,
        });
        workload.Variants.Add(new VariantResult { Name = "csv", Description = "", Error = "the service's reader cannot read it" });

        var rows = BenchReportPrinter.VariantRows(workload, cores: 2).ToArray();

        Assert.Equal(BenchReportPrinter.VariantHeaders.Length, rows[0].Length);
        Assert.Equal(["rg16k", "62 row groups ≤ 16,384, 250 MiB", "4.00 (3.50, 20)", "250,000", "10.00", "100,000", "2.50×", "1.25×", "5.5 / 1.5 (3.50)", "480", "equal"], rows[0]);
        Assert.Equal(["csv", "-", "-", "-", "-", "-", "-", "-", "-", "-", "error"], rows[1]);
    }

    [Fact]
    public void Stage_seconds_are_read_from_an_object_or_a_list_and_are_absent_when_the_service_does_not_report_them()
    {
        static JsonElement Status(string json) => BenchRunner.ParseStatus("Job 1: 10 rows\n" + json)!.Value;

        Assert.Equal(
            new Dictionary<string, double> { ["read"] = 1.5, ["infer"] = 2 },
            BenchRunner.StageSeconds(Status("""{"id":"x","stageSeconds":{"read":1.5,"infer":2,"note":"n"}}""")));
        Assert.Equal(
            new Dictionary<string, double> { ["copy"] = 0.25 },
            BenchRunner.StageSeconds(Status("""{"stages":[{"name":"copy","seconds":0.25},{"name":"odd"}]}""")));
        Assert.Null(BenchRunner.StageSeconds(Status("""{"id":"x","state":"succeeded"}""")));
        Assert.Null(BenchRunner.ParseStatus("no json here"));
    }

    [Fact]
    public void A_workload_fails_when_a_variant_or_an_extra_case_failed()
    {
        static WorkloadResult Light() => new() { Name = "light", Rows = 10, Features = 2, Model = "m" };
        Assert.True(BenchCommand.Succeeded(Light()));

        var variant = Light();
        variant.Variants.Add(new VariantResult { Name = "csv", Description = "", Error = "results differ" });
        Assert.False(BenchCommand.Succeeded(variant));

        var overhead = Light();
        overhead.Overhead = new OverheadResult { Error = "exit 1" };
        Assert.False(BenchCommand.Succeeded(overhead));

        var large = Light();
        large.LargeJob = new LargeJobResult { Error = "timed out" };
        Assert.False(BenchCommand.Succeeded(large));
    }

    [Fact]
    public void Medians_and_the_reproducing_command_follow_the_options()
    {
        Assert.Equal(2, Stats.Median([3, 1, 2]));
        Assert.Equal(2.5, Stats.Median([4, 1, 2, 3]));

        var command = BenchCommand.ReproduceCommand(new BenchCommand.ReproduceOptions(
            "light", 50_000, 8192, 50_000, null, Json: true, Parquet: false, "rg8k,csv", 3, LargeJob: true, Requests: 0, RequestsOnly: false, RequestRepeats: 3));

        Assert.Equal(
            "dotnet run -c Release --project tests/BatchScoring.Benchmarks -- --workload light --rows 50000 --batch-rows 8192 --chunk-rows 50000 "
            + "--variants rg8k,csv --overhead-runs 3 --large-job --requests 0 --json",
            command);
    }
}
