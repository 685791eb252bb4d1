using Npgsql;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>
/// Counts the broker's redeliveries of a score request by request id (scoring.request_redeliveries). Classic queues
/// keep no delivery count, and a request that kills the worker handling it comes back with nothing but the
/// redelivered flag: this is what bounds it.
/// </summary>
internal sealed class RedeliveryCounter(NpgsqlDataSource dataSource)
{
    /// <summary>Records one more redelivery of <paramref name="requestId"/>; returns how many there have been.</summary>
    public async Task<int> CountAsync(string requestId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            """
            WITH expired AS (DELETE FROM scoring.request_redeliveries WHERE last_at < now() - interval '1 day')
            INSERT INTO scoring.request_redeliveries AS r (request_id, redeliveries) VALUES ($1, 1)
            ON CONFLICT (request_id) DO UPDATE SET redeliveries = r.redeliveries + 1, last_at = now()
            RETURNING redeliveries
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = requestId });
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
