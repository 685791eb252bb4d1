using BatchScoring.Application;
using BatchScoring.Worker.Requests.Intake;
using Microsoft.Extensions.DependencyInjection;

namespace BatchScoring.Worker.Requests;

/// <summary>Request mode (queue <c>score-requests</c>) for worker processes.</summary>
public static class RequestModeHostExtensions
{
    /// <summary>Options (section <c>BatchScoring:Requests</c>), the batching service and the consumer of <c>score-requests</c> (plain JSON or envelope).</summary>
    public static IServiceCollection AddRequestModeServices(this IServiceCollection services)
    {
        services.AddValidatedOptions<RequestBatchingOptions>(RequestBatchingOptions.SectionName, o => o.Validate());
        services.AddSingleton<RequestScoringService>();
        services.AddSingleton<RedeliveryCounter>();
        services.AddHostedService<RequestQueueListener>();
        services.AddHostedService<WarmUp.AliasMoveWatcher>();
        return services;
    }
}

