using BatchScoring.Application.Requests;
using BatchScoring.Worker.Consumers;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BatchScoring.Worker.Hosting;

/// <summary>Request mode (queue <c>score-requests</c>) for worker processes: options, the batching service and the consumer.</summary>
public static class RequestModeHostExtensions
{
    /// <summary>Options (section <c>BatchScoring:Requests</c>) and the singletons the consumer needs.</summary>
    public static IServiceCollection AddRequestModeServices(this IServiceCollection services)
    {
        services.AddOptions<RequestBatchingOptions>()
            .BindConfiguration(RequestBatchingOptions.SectionName)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<RequestBatchingOptions>, RequestBatchingOptionsValidator>();
        services.AddSingleton<RequestScoringService>();
        services.AddSingleton<ScoreRequestReplies>();
        return services;
    }

    /// <summary>Registers the <c>score-requests</c> consumer (plain JSON or envelope).</summary>
    public static void AddScoreRequestConsumer(this IBusRegistrationConfigurator configurator) =>
        configurator.AddConsumer<ScoreRequestConsumer, ScoreRequestConsumerDefinition>();
}

internal sealed class RequestBatchingOptionsValidator : IValidateOptions<RequestBatchingOptions>
{
    public ValidateOptionsResult Validate(string? name, RequestBatchingOptions options)
    {
        var failures = options.Validate().ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
