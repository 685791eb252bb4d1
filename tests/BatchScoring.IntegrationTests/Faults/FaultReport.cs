using System.Globalization;
using BatchScoring.IntegrationTests.Jobs;
using Npgsql;

namespace BatchScoring.IntegrationTests.Faults;

/// <summary>
/// Which size of the fault scenarios runs: the reduced set by default (inside `./build.sh test`), the full set with
/// <c>BATCHSCORING_FAULTS=full</c> (`./build.sh faults`: ≥ 20 kills, 15 s and 2-minute outages).
/// </summary>
public static class FaultPlan
{
    public const string Trait = "Category";
    public const string Category = "Faults";

    public static bool Full => Environment.GetEnvironmentVariable("BATCHSCORING_FAULTS") is "full";

    public static string Size => Full ? "full" : "reduced";
}

/// <summary>Rows of a scored job checked against the input keys 1..N.</summary>
public sealed record RowTally(long Expected, long Lost, long Duplicated, long Unexpected)
{
    public bool Exact => Lost == 0 && Duplicated == 0 && Unexpected == 0;

    /// <summary>Counts the keys of <c>scoring.&lt;table&gt;</c> against 1..<paramref name="expected"/>.</summary>
    public static async Task<RowTally> CountAsync(string connectionString, string table, long expected, CancellationToken cancellationToken)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var command = db.CreateCommand(
            $"SELECT count(*), count(DISTINCT customer_id) FILTER (WHERE customer_id BETWEEN 1 AND $1), count(*) FILTER (WHERE customer_id NOT BETWEEN 1 AND $1) FROM scoring.{table}");
        command.Parameters.AddWithValue(expected);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var (count, distinct, unexpected) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
            return new RowTally(expected, expected - distinct, count - unexpected - distinct, unexpected);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return new RowTally(expected, expected, 0, 0);
        }
    }

    public static RowTally operator +(RowTally a, RowTally b) =>
        new(a.Expected + b.Expected, a.Lost + b.Lost, a.Duplicated + b.Duplicated, a.Unexpected + b.Unexpected);
}

/// <summary>
/// Appends one row per scenario to the fault table (<c>BATCHSCORING_FAULTS_REPORT</c>, a Markdown file, when set) and to
/// the test's output: scenario, runs, rows expected, lost, duplicated, outcome.
/// </summary>
public static class FaultReport
{
    private static readonly Lock Gate = new();

    public static void Record(ITestOutputHelper output, string scenario, int runs, RowTally? rows, string outcome)
    {
        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"| {scenario} | {runs} | {rows?.Expected.ToString("N0", CultureInfo.InvariantCulture) ?? "–"} | {rows?.Lost.ToString(CultureInfo.InvariantCulture) ?? "–"} | {rows?.Duplicated.ToString(CultureInfo.InvariantCulture) ?? "–"} | {outcome} |");
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("BATCHSCORING_FAULTS_REPORT") is { Length: > 0 } path)
        {
            lock (Gate)
            {
                File.AppendAllText(path, line + Environment.NewLine);
            }
        }
    }

    /// <summary>Waits for the job to end; on timeout returns its last status instead of failing, so the report can say where it stuck.</summary>
    public static async Task<(Contracts.JobStatus Status, bool Ended)> WaitForEndOrStatusAsync(ServiceTestHost host, Guid id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        Contracts.JobStatus? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await host.GetStatusAsync(id, cancellationToken);
                if (last.State is "succeeded" or "failed" or "cancelled")
                {
                    return (last, true);
                }
            }
            catch (HttpRequestException)
            {
                // the API answers 5xx while its database is down
            }

            await Task.Delay(250, cancellationToken);
        }

        return (last ?? await host.GetStatusAsync(id, cancellationToken), false);
    }

    public static string Describe(Contracts.JobStatus status, bool ended) =>
        ended
            ? $"{status.State}{(status.Error is { } error ? $" ({error})" : "")}"
            : $"still {status.State} at {status.ChunksDone}/{status.ChunksTotal} chunks";
}
