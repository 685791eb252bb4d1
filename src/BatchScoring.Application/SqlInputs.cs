using System.Net.Sockets;
using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using Npgsql;

namespace BatchScoring.Application;

/// <summary>A named input source could not be reached (connection refused, timeout): the job was not recorded; retry later.</summary>
public sealed class InputSourceUnavailableException(string source, Exception inner)
    : Exception($"Input source '{source}' cannot be reached ({inner.Message.Split('\n')[0]}); the job was not recorded. Retry later.", inner);

/// <summary>
/// Jobs whose rows come from a SQL query on a named PostgreSQL source (<see cref="NamedSources"/>): checks the request,
/// plans key-range chunks at submit, and reads a chunk for a worker (<see cref="SqlDataset"/> does the SQL).
/// </summary>
public sealed class SqlInputs(NamedSources sources)
{
    /// <summary>Longest query accepted (characters).</summary>
    public const int MaxQueryLength = 32 * 1024;

    /// <summary>The checks that need no database: one of Input or InputSql, a source name, a single SELECT.</summary>
    public static void ValidateFields(SubmitScoringJob request, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(problems);
        if (!string.IsNullOrEmpty(request.Input))
        {
            problems.Add("Give Input (files) or InputSql (a query on a source), not both.");
        }

        if (string.IsNullOrWhiteSpace(request.InputSource))
        {
            problems.Add($"InputSource is required with InputSql: the name of a source configured as {NamedSources.SectionName}:<name>.");
        }

        if (string.IsNullOrWhiteSpace(request.InputSql))
        {
            problems.Add("InputSql must not be empty.");
        }
        else if (request.InputSql.Length > MaxQueryLength)
        {
            problems.Add($"InputSql is longer than {MaxQueryLength:N0} characters.");
        }
        else
        {
            try
            {
                SqlDataset.EnsureSingleSelect(request.InputSql);
            }
            catch (DatasetException ex)
            {
                problems.Add(ex.Message);
            }
        }
    }

    /// <summary>
    /// The query's columns and key-range chunks. When the key column is missing or a list, the plan has no chunks and
    /// no SQL plan: the submitter reports the key problem with the other column checks.
    /// </summary>
    public async Task<(DatasetPlan Plan, SqlInputPlan? Input)> PlanAsync(SubmitScoringJob request, int chunkRows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = request.InputSource!;
        var query = SqlDataset.EnsureSingleSelect(request.InputSql!);
        var source = SourceForSubmit(name);
        return await AtSubmitAsync(name, async () =>
        {
            var columns = await SqlDataset.DescribeAsync(source, query, cancellationToken);
            var key = columns.FirstOrDefault(c => c.Name == request.KeyColumn);
            if (key is null || key.Kind == ColumnKind.Float32List)
            {
                return (new DatasetPlan(DatasetFormat.Sql, columns, [], 0), (SqlInputPlan?)null);
            }

            var planned = await SqlDataset.PlanAsync(source, name, query, columns, request.KeyColumn, chunkRows, cancellationToken);
            return (new DatasetPlan(DatasetFormat.Sql, columns, planned.Chunks, planned.TotalRows), planned.Input);
        });
    }

    /// <summary>The first rows of <paramref name="columns"/>, at submit.</summary>
    public Task<ColumnBatch> SampleAsync(SqlInputPlan input, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var source = SourceForSubmit(input.Source);
        return AtSubmitAsync(input.Source, () => SqlDataset.SampleAsync(source, input.Query, columns, cancellationToken));
    }

    /// <summary>
    /// Reads a chunk for a worker. A query the source refuses for good (a dropped table, a revoked privilege) is a
    /// <see cref="DatasetException"/> naming the source, so the chunk fails at once; connection failures stay transient,
    /// and so does a source this worker has no configuration for (another worker may have it).
    /// </summary>
    public async Task<SourceBatch> ReadChunkAsync(SqlInputPlan input, ChunkSpec chunk, IReadOnlyList<SourceColumn> columns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        try
        {
            return await SqlDataset.ReadChunkAsync(sources.Get(input.Source), input, chunk, columns, cancellationToken);
        }
        catch (PostgresException ex) when (ChunkErrors.IsPermanentSqlState(ex.SqlState) || ex.SqlState == ReadOnlyTransaction)
        {
            throw new DatasetException($"Input source '{input.Source}' refused the query of chunk {chunk.Index}: {ex.MessageText}", ex);
        }
    }

    /// <summary>SQLSTATE read_only_sql_transaction: the query tried to write.</summary>
    private const string ReadOnlyTransaction = "25006";

    private NpgsqlDataSource SourceForSubmit(string name)
    {
        try
        {
            return sources.Get(name);
        }
        catch (UnknownSourceException ex)
        {
            throw new JobValidationException($"InputSource: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// A source that cannot be reached or logged into (connection, authentication, unknown database, resources,
    /// shutdown) is the service's problem, not the request's: 503. Anything else the server refuses is the query's: 400.
    /// </summary>
    private static async Task<T> AtSubmitAsync<T>(string name, Func<Task<T>> work)
    {
        try
        {
            return await work();
        }
        catch (PostgresException ex) when (ex.SqlState[..2] is "08" or "28" or "3D" or "53" or "57")
        {
            throw new InputSourceUnavailableException(name, ex);
        }
        catch (PostgresException ex)
        {
            var hint = ex.SqlState == ReadOnlyTransaction ? " (the query runs in a read-only transaction: it may only read)" : string.Empty;
            throw new JobValidationException($"InputSql: source '{name}' refused the query: {ex.MessageText}{hint}", ex);
        }
        catch (Exception ex) when (ex is NpgsqlException or SocketException or TimeoutException)
        {
            throw new InputSourceUnavailableException(name, ex);
        }
    }
}
