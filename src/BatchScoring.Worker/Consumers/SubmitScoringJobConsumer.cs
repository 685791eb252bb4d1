using BatchScoring.Application;
using BatchScoring.Contracts;
using MassTransit;
using Microsoft.Extensions.Options;

namespace BatchScoring.Worker.Consumers;

/// <summary>
/// Submits jobs that arrive as messages (tenant "default"). An invalid request, or a reused idempotency key with another request, faults at once (no retry): the <c>Fault&lt;SubmitScoringJob&gt;</c>
/// and the copy in <c>submit-scoring-job_error</c> carry the validation message.
/// </summary>
public sealed class SubmitScoringJobConsumer(JobSubmitter submitter) : IConsumer<SubmitScoringJob>
{
    public const string QueueName = "submit-scoring-job";

    public async Task Consume(ConsumeContext<SubmitScoringJob> context)
    {
        var result = await submitter.SubmitAsync(context.Message, context.CancellationToken);
        if (context.RequestId is not null)
        {
            await context.RespondAsync(new SubmitScoringJobAccepted(result.Job.Id, result.Created, result.Job.State.ToString().ToLowerInvariant()));
        }
    }
}

public sealed class SubmitScoringJobConsumerDefinition : ConsumerDefinition<SubmitScoringJobConsumer>
{
    public SubmitScoringJobConsumerDefinition(IOptions<BatchScoringOptions> options) =>
        EndpointName = options.Value.QueueName(SubmitScoringJobConsumer.QueueName);

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<SubmitScoringJobConsumer> consumerConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Ignore<JobValidationException>();
            r.Ignore<IdempotencyConflictException>();
            r.Intervals(500, 2_000);
        });
}
