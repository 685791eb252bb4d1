using BatchScoring.Contracts;

namespace BatchScoring.Application.Drift;

/// <summary>
/// Delivers <see cref="DriftDetected"/> to the webhook of <see cref="DriftOptions.WebhookUrl"/>, when one is set. The
/// events are already on the bus by then, so a failed delivery is logged, not thrown. The sender lives with the hosts
/// because its signing library brings the web framework, which this project stays free of.
/// </summary>
public interface IDriftWebhook
{
    Task SendAsync(DriftDetected detected, CancellationToken cancellationToken);
}
