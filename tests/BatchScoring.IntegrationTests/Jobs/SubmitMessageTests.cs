using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BatchScoring.IntegrationTests.Jobs;

/// <summary>Jobs submitted as a `SubmitScoringJob` message instead of HTTP.</summary>
public sealed class SubmitMessageTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_submit_message_starts_a_job_and_an_invalid_one_faults_with_the_reason()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "submitmsg", ServiceRoles.All, Ct);
        await host.RegisterModelAsync("msg", SampleModels.Mlp([4, 1], seed: 8).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = 4, RowGroupRows = 1_000 }, Ct);
        var options = host.Services.GetRequiredService<IOptions<BatchScoringOptions>>().Value;
        var bus = host.Services.GetRequiredService<IBus>();

        var client = bus.CreateRequestClient<SubmitScoringJob>(new Uri($"queue:{options.QueueName("submit-scoring-job")}"), RequestTimeout.After(s: 30));
        var accepted = await client.GetResponse<SubmitScoringJobAccepted>(
            new SubmitScoringJob { Model = "msg", Input = input, KeyColumn = "customer_id", OutputTable = "msg_results", IdempotencyKey = "via-bus" }, Ct);
        var final = await host.WaitForEndAsync(accepted.Message.JobId, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal("succeeded", final.State);
        Assert.Equal(3_000, final.ScoredRows);

        var fault = await Assert.ThrowsAsync<RequestFaultException>(() => client.GetResponse<SubmitScoringJobAccepted>(
            new SubmitScoringJob { Model = "missing-model", Input = input, KeyColumn = "customer_id", OutputTable = "msg_results" }, Ct));
        Assert.Contains("Model 'missing-model' is not registered", fault.Message + string.Join(" ", fault.Fault?.Exceptions.Select(e => e.Message) ?? []), StringComparison.Ordinal);
        var store = host.Services.GetRequiredService<JobStore>();
        Assert.Single(await store.ListJobsAsync(new JobListFilter(), Ct));
    }
}
