using MassTransit;

namespace BatchScoring.Application;

/// <summary>
/// Whether RabbitMQ can be reached now: what readiness reports and what a submission is refused on at once. MassTransit
/// judges a bus by its receive endpoints; a process without any (the API and scheduler roles only publish and send)
/// stays "healthy" while the broker is down, so there a plain connection of its own (<see cref="IBrokerConnectionWatch"/>)
/// decides too.
/// </summary>
public sealed class BrokerReachability(IBusControl bus, IBrokerConnectionWatch watch)
{
    /// <summary>True when the broker is reachable; otherwise <paramref name="reason"/> says what is wrong.</summary>
    public bool IsReachable(out string reason)
    {
        var health = bus.CheckHealth();
        if (health.Status != BusHealthStatus.Healthy)
        {
            reason = health.Description;
            return false;
        }

        if (watch.IsOpen is false)
        {
            reason = watch.LastError ?? "the connection to RabbitMQ is closed";
            return false;
        }

        reason = "RabbitMQ connected";
        return true;
    }
}

/// <summary>A RabbitMQ connection kept open to tell whether the broker is reachable.</summary>
public interface IBrokerConnectionWatch
{
    /// <summary>Whether the connection is open; null when this process does not watch the broker this way.</summary>
    bool? IsOpen { get; }

    /// <summary>Why the last attempt to connect failed, if it did.</summary>
    string? LastError { get; }
}
