using Microsoft.Extensions.Configuration;

namespace BatchScoring.Application;

/// <summary>Names of the connection strings (ConnectionStrings:Postgres, ConnectionStrings:RabbitMq).</summary>
public static class ConnectionNames
{
    public const string Postgres = "Postgres";
    public const string RabbitMq = "RabbitMq";

    public static string GetRequiredConnectionString(this IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"Connection string '{name}' is not configured: set ConnectionStrings__{name} (environment) or ConnectionStrings:{name} (appsettings).");
}
