using System.CommandLine;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// The options that define a job (model, input, key, outputs, limits): one definition shared by <c>jobs submit</c> and
/// <c>schedules create</c>, so that a schedule accepts every job option under the same name and help.
/// </summary>
internal sealed class JobSubmitOptions
{
    public Option<string> Model { get; } = new("--model") { Description = "Model name, optionally name@version or name@alias.", Required = true };
    public Option<string?> Input { get; } = new("--input") { Description = "Parquet file, directory of Parquet files, or CSV file (as the workers see it)." };
    public Option<string?> InputSql { get; } = new("--input-sql")
    {
        Description = "Instead of --input: a single SELECT whose rows are scored, e.g. \"select customer_id, f0, f1 from features where day = '2026-12-01'\" (needs --input-source; split by --key-column ranges).",
    };

    public Option<string?> InputSource { get; } = new("--input-source") { Description = "With --input-sql: a PostgreSQL source configured on the service as BatchScoring:Sources:<name>." };
    public Option<string> Key { get; } = new("--key-column") { Description = "Column identifying each row.", Required = true };
    public Option<string[]> Passthrough { get; } = CliOptions.List("--passthrough", "Columns copied into the results.");
    public Option<string[]> Features { get; } = CliOptions.List("--features", "Feature columns in model order (single [N,F] input).");
    public Option<string?> Table { get; } = new("--output-table") { Description = "Results table, e.g. scoring.results_churn." };
    public Option<string?> Parquet { get; } = new("--output-parquet") { Description = "Directory for Parquet part files and _SUCCESS." };
    public Option<int?> ChunkRows { get; } = new("--chunk-rows") { Description = "Rows per chunk message." };
    public Option<int?> BatchRows { get; } = new("--batch-rows") { Description = "Rows per inference call." };
    public Option<bool> AllowNonFinite { get; } = new("--allow-non-finite") { Description = "Let NaN/Infinity reach the model." };
    public Option<long?> MaxFailedRows { get; } = new("--max-failed-rows") { Description = "Fail the job past this many failed rows." };
    public Option<double?> MaxFailedPercent { get; } = new("--max-failed-percent") { Description = "Fail the job past this percentage of failed rows (default 1)." };
    public Option<string?> Challenger { get; } = new("--challenger")
    {
        Description = "Also score every row with this version (name@version or name@alias, same inputs as --model): results in <table>_challenger and challenger/, comparison in `jobs status`.",
    };

    public IEnumerable<Option> All =>
        [Model, Input, InputSql, InputSource, Key, Passthrough, Features, Table, Parquet, ChunkRows, BatchRows, AllowNonFinite, MaxFailedRows, MaxFailedPercent, Challenger];

    public void AddTo(Command command)
    {
        foreach (var option in All)
        {
            command.Options.Add(option);
        }

        command.Validators.Add(result =>
        {
            var hasInput = result.GetResult(Input) is not null;
            var hasSql = result.GetResult(InputSql) is not null;
            if (hasInput == hasSql)
            {
                result.AddError("Give --input (files) or --input-sql with --input-source (a query), one of the two.");
            }
            else if (hasSql != (result.GetResult(InputSource) is not null))
            {
                result.AddError(hasSql ? "--input-sql needs --input-source (a source configured as BatchScoring:Sources:<name>)." : "--input-source is only used with --input-sql.");
            }
        });
    }

    /// <summary>The job the options describe (paths made absolute here: the service resolves nothing against its own directory).</summary>
    public SubmitScoringJob ToRequest(ParseResult parse, string? idempotencyKey)
    {
        var modelText = parse.GetRequiredValue(Model);
        var at = modelText.IndexOf('@', StringComparison.Ordinal);
        return new SubmitScoringJob
        {
            Model = at < 0 ? modelText : modelText[..at],
            ModelVersion = at < 0 ? null : modelText[(at + 1)..],
            Input = parse.GetValue(Input) is { } path ? Path.GetFullPath(path) : "",
            InputSql = parse.GetValue(InputSql),
            InputSource = parse.GetValue(InputSource),
            KeyColumn = parse.GetRequiredValue(Key),
            Passthrough = CliOptions.Values(parse, Passthrough),
            Features = CliOptions.ValuesOrNull(parse, Features),
            OutputTable = parse.GetValue(Table),
            OutputParquet = parse.GetValue(Parquet) is { } p ? Path.GetFullPath(p) : null,
            ChunkRows = parse.GetValue(ChunkRows),
            BatchRows = parse.GetValue(BatchRows),
            AllowNonFinite = parse.GetValue(AllowNonFinite),
            MaxFailedRows = parse.GetValue(MaxFailedRows),
            MaxFailedPercent = parse.GetValue(MaxFailedPercent),
            IdempotencyKey = idempotencyKey,
            Challenger = parse.GetValue(Challenger),
        };
    }
}
