using System.Data.Common;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using DuckDB.NET.Data;
using Npgsql;

namespace BatchScoring.IntegrationTests.Outputs;

/// <summary>
/// Every SQL example of README.md and schemas/sql/README.md runs against a real job's output: ```sql blocks and inline
/// <c>`SELECT …`</c> spans in PostgreSQL (each in a transaction rolled back), blocks preceded by
/// <c>&lt;!-- example: duckdb --&gt;</c> in DuckDB over the job's Parquet folder. The documents' example job id and folder
/// are replaced by the real ones; a failing example fails the test with its file and line.
/// </summary>
public sealed partial class ReadmeExampleTests(ServerFixture servers)
{
    /// <summary>The job id and Parquet folder the documents use in their examples.</summary>
    private const string ExampleJobId = "0197a0c4-5d8e-7b31-9a51-0c2f6f9d3e11";
    private const string ExampleFolder = "/data/out/churn/2025-06-01";

    private static readonly string[] Documents = ["README.md", "schemas/sql/README.md"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Examples_are_found_in_both_documents_with_their_line_numbers()
    {
        var examples = Documents.SelectMany(Extract).ToArray();
        Assert.Contains(examples, e => e.Document == "README.md" && e.Sql.Contains("scoring.model_versions", StringComparison.Ordinal));
        Assert.True(examples.Count(e => e.Document == "schemas/sql/README.md" && !e.DuckDb) >= 7, string.Join("\n", examples.Select(e => e.Where)));
        Assert.Equal(2, examples.Count(e => e.DuckDb));
        var histogram = Assert.Single(examples, e => e.DuckDb && e.Sql.Contains("floor(score * 10)", StringComparison.Ordinal));
        var lines = File.ReadAllLines(RepositoryFile(histogram.Document));
        Assert.StartsWith("SELECT least(floor(score * 10)", lines[histogram.Line - 1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_sql_and_duckdb_example_runs_against_a_real_results_table_and_parquet_folder()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "readme", ServiceRoles.All, Ct);
        var features = Enumerable.Range(0, 4).Select(GeneratedDatasetOptions.FeatureName).ToArray();
        await host.RegisterModelAsync("churn", SampleModels.Mlp([4, 8, 1], seed: 9, featureNames: features).Bytes, Ct);
        var input = Path.Combine(host.WorkDir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = 4, RowGroupRows = 1_000, NaNEvery = 500, Seed = 4 }, Ct);
        var folder = Path.Combine(host.WorkDir, "out");
        var (response, submitted, body) = await host.SubmitAsync(new SubmitScoringJob
        {
            Model = "churn", Input = input, KeyColumn = "customer_id", Passthrough = ["region"],
            OutputTable = "scoring.results_churn", OutputParquet = folder, ChunkRows = 1_000,
        }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        var final = await host.WaitForEndAsync(submitted!.Id, TimeSpan.FromMinutes(2), Ct);
        Assert.True(final.State == "succeeded", $"{final.State}: {final.Error}");

        var failures = new List<string>();
        var ran = 0;
        await using var postgres = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync(Ct);
        foreach (var example in Documents.SelectMany(Extract))
        {
            var sql = example.Sql.Replace(ExampleJobId, submitted.Id.ToString(), StringComparison.Ordinal)
                .Replace(ExampleFolder, folder, StringComparison.Ordinal);
            try
            {
                var rows = example.DuckDb ? await RunAsync(duck, sql) : await RunInRolledBackTransactionAsync(postgres, sql);
                TestContext.Current.TestOutputHelper?.WriteLine($"{example.Where}: {rows} rows");
                ran++;
            }
            catch (Exception ex) when (ex is DbException or InvalidOperationException)
            {
                failures.Add($"{example.Where} ({(example.DuckDb ? "DuckDB" : "PostgreSQL")}): {ex.Message}");
            }
        }

        Assert.True(failures.Count == 0, "examples that fail:\n" + string.Join("\n", failures));
        Assert.True(ran >= 10, $"only {ran} examples ran");

        // The fixed histogram example counts every scored row (the width_bucket one did not run in DuckDB at all).
        var histogram = Documents.SelectMany(Extract).Single(e => e.DuckDb && e.Sql.Contains("floor(score * 10)", StringComparison.Ordinal));
        await using var total = duck.CreateCommand();
        total.CommandText = $"SELECT sum(rows)::BIGINT FROM ({histogram.Sql.Replace(ExampleFolder, folder, StringComparison.Ordinal).TrimEnd().TrimEnd(';')})";
        Assert.Equal(final.ScoredRows, Convert.ToInt64(await total.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_failing_example_is_reported_with_its_document_and_line()
    {
        var markdown = "# T\n\ntext\n\n<!-- example: duckdb -->\n```sql\nSELECT width_bucket(1.0, 0, 1, 10);\n```\n";
        var example = Assert.Single(Extract("doc.md", markdown));
        Assert.True(example.DuckDb);
        Assert.Equal("doc.md:7", example.Where);
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync(Ct);
        await Assert.ThrowsAnyAsync<DbException>(() => RunAsync(duck, example.Sql));
    }

    private sealed record Example(string Document, int Line, string Sql, bool DuckDb)
    {
        public string Where => $"{Document}:{Line}";
    }

    private static IEnumerable<Example> Extract(string document) => Extract(document, File.ReadAllText(RepositoryFile(document)));

    /// <summary>```sql blocks (the line of their first statement line) and inline `SELECT …` spans (their line).</summary>
    private static IEnumerable<Example> Extract(string document, string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var examples = new List<Example>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```sql")
            {
                continue;
            }

            var previous = i > 0 ? lines[i - 1].Trim() : "";
            var duckDb = previous == "<!-- example: duckdb -->";
            var sql = new StringBuilder();
            var first = i + 2;
            for (i++; i < lines.Length && lines[i].Trim() != "```"; i++)
            {
                sql.AppendLine(lines[i]);
            }

            examples.Add(new Example(document, first, sql.ToString(), duckDb));
        }

        var text = string.Join('\n', lines);
        foreach (Match span in InlineSelect().Matches(text))
        {
            var line = text.AsSpan(0, span.Index).Count('\n') + 1;
            examples.Add(new Example(document, line, span.Groups[1].Value.Replace('\n', ' '), DuckDb: false));
        }

        return examples;
    }

    [GeneratedRegex("(?<![`\\w])`((?:SELECT|WITH)\\s[^`]+)`(?!`)")]
    private static partial Regex InlineSelect();

    /// <summary>From the repository root (found by schemas/sql/README.md: the build output has README.md files of packages).</summary>
    private static string RepositoryFile(string document)
    {
        var anchor = RepositoryPaths.FindUpwards("schemas/sql/README.md")
            ?? throw new InvalidOperationException($"schemas/sql/README.md not found above {AppContext.BaseDirectory}");
        return Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(anchor)))!, document);
    }

    private static async Task<long> RunInRolledBackTransactionAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var connection = await dataSource.OpenConnectionAsync(Ct);
        await using var transaction = await connection.BeginTransactionAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        var rows = await ReadAllAsync(command);
        await transaction.RollbackAsync(Ct);
        return rows;
    }

    private static async Task<long> RunAsync(DuckDBConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await ReadAllAsync(command);
    }

    private static async Task<long> ReadAllAsync(DbCommand command)
    {
        long rows = 0;
        await using var reader = await command.ExecuteReaderAsync(Ct);
        do
        {
            while (await reader.ReadAsync(Ct))
            {
                rows++;
            }
        }
        while (await reader.NextResultAsync(Ct));
        return rows;
    }
}
