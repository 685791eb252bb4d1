using System.Text.Json;
using System.Text.Json.Serialization;
using BatchScoring.Application.Challengers;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application;

/// <summary>A model output column as the job's results hold it.</summary>
public sealed record PlannedOutput(string Name, ColumnKind Kind);

/// <summary>
/// How a job is scored, made once by the submitter and stored on the job row (<c>scoring.jobs.plan</c>): the input
/// columns read for every chunk (name, kind, nullable; key and passthrough columns first), the columns carried to the
/// results, the feature columns the model's input mapping chose (null when each model input is fed from the column of
/// its name) and the model's output columns. Workers score from it instead of planning again; they only check that
/// each file they read still has these columns.
/// </summary>
public sealed record ScoringPlan(
    IReadOnlyList<SourceColumn> Columns,
    IReadOnlyList<string> Carried,
    IReadOnlyList<string>? Features,
    IReadOnlyList<PlannedOutput> Outputs)
{
    /// <summary>For a SQL input: the source, query and key ranges its chunks read (null for files).</summary>
    public SqlInputPlan? Sql { get; init; }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The version scored beside the model in the same pass (docs/challenger.md); null for most jobs.</summary>
    public ChallengerPlan? Challenger { get; init; }

    /// <summary>
    /// Plans a job over an input with <paramref name="inputColumns"/> for <paramref name="model"/>. Throws
    /// <see cref="InputMappingException"/> when the model cannot read the input, <see cref="DatasetException"/> when
    /// the key or a passthrough column is missing.
    /// </summary>
    public static ScoringPlan Create(
        IReadOnlyList<SourceColumn> inputColumns, ScoringModel model, string keyColumn, IReadOnlyList<string> passthrough, IReadOnlyList<string>? features)
    {
        ArgumentNullException.ThrowIfNull(inputColumns);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(passthrough);
        var mapping = model.MapInputs(
            inputColumns.Select(c => (c.Name, c.Kind)).ToArray(),
            new InputMappingRequest { KeyColumn = keyColumn, Passthrough = passthrough, Features = features });

        var carried = new List<string> { keyColumn };
        carried.AddRange(passthrough.Where(p => p != keyColumn));
        var sourceOf = inputColumns.GroupBy(c => c.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var missing = carried.Where(n => !sourceOf.ContainsKey(n)).ToArray();
        if (missing.Length > 0)
        {
            throw new DatasetException($"The input has no column {string.Join(", ", missing.Select(m => $"'{m}'"))}.");
        }

        return new ScoringPlan(
            carried.Concat(mapping.RequiredColumns).Distinct(StringComparer.Ordinal).Select(n => sourceOf[n]).ToArray(),
            carried,
            mapping.Mode == InputMappingMode.PerInput ? null : mapping.Bindings.Select(b => b.Column).ToArray(),
            model.DescribeOutputs().Select(o => new PlannedOutput(o.Name, o.Kind)).ToArray());
    }

    /// <summary>The model's input mapping over the planned columns, with the planned features (no choice is made again).</summary>
    public InputMapping MapInputs(ScoringModel model, string keyColumn, IReadOnlyList<string> passthrough)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.MapInputs(
            Columns.Select(c => (c.Name, c.Kind)).ToArray(),
            new InputMappingRequest { KeyColumn = keyColumn, Passthrough = passthrough, Features = Features });
    }

    /// <summary>The result table: key, passthrough columns with their input kinds, then the model's outputs.</summary>
    public ResultTable DefineResultTable(string tableName, string keyColumn, IReadOnlyList<string> passthrough)
    {
        ArgumentNullException.ThrowIfNull(passthrough);
        return ResultTable.Define(
            tableName,
            new ResultColumn(keyColumn, Column(keyColumn).Kind),
            passthrough.Select(p => new ResultColumn(p, Column(p).Kind)).ToArray(),
            Outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
    }

    /// <summary>The challenger's result table: the same key and passthrough columns, then the challenger's outputs.</summary>
    public ResultTable DefineChallengerTable(string tableName, string keyColumn, IReadOnlyList<string> passthrough)
    {
        ArgumentNullException.ThrowIfNull(passthrough);
        var challenger = Challenger ?? throw new JobPlanException("The job's plan has no challenger.");
        return ResultTable.Define(
            tableName,
            new ResultColumn(keyColumn, Column(keyColumn).Kind),
            passthrough.Select(p => new ResultColumn(p, Column(p).Kind)).ToArray(),
            challenger.Outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray());
    }

    /// <summary>Schema of the challenger's Parquet part files.</summary>
    public IReadOnlyList<SourceColumn> ChallengerPartColumns() =>
        ChunkScorer.PartColumns(Carried.Select(Column), (Challenger ?? throw new JobPlanException("The job's plan has no challenger.")).Outputs.Select(o => (o.Name, o.Kind)));

    /// <summary>Schema of the job's Parquet part files.</summary>
    public IReadOnlyList<SourceColumn> PartColumns() =>
        ChunkScorer.PartColumns(Carried.Select(Column), Outputs.Select(o => (o.Name, o.Kind)));

    /// <summary>
    /// Throws a <see cref="DatasetException"/> naming the first planned column that <paramref name="path"/> lacks or
    /// holds with another kind: the file changed after the job was submitted, and its chunks cannot be read as planned.
    /// </summary>
    public void EnsureMatches(string path, IReadOnlyList<SourceColumn> fileColumns)
    {
        ArgumentNullException.ThrowIfNull(fileColumns);
        foreach (var planned in Columns)
        {
            var actual = fileColumns.FirstOrDefault(c => c.Name == planned.Name);
            if (actual is null)
            {
                throw new DatasetException($"Input file '{path}' has no column '{planned.Name}' any more (the file changed after the job was submitted).");
            }

            if (actual.Kind != planned.Kind)
            {
                throw new DatasetException(
                    $"Input file '{path}' changed after the job was submitted: column '{planned.Name}' is {actual.Kind} now, the job was planned with {planned.Kind}.");
            }
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a plan stored by <see cref="ToJson"/>; a plan that cannot be read fails the job (<see cref="JobPlanException"/>).</summary>
    public static ScoringPlan FromJson(Guid jobId, string json)
    {
        try
        {
            var plan = JsonSerializer.Deserialize<ScoringPlan>(json, Json);
            return plan is { Columns.Count: > 0, Carried.Count: > 0, Outputs: not null }
                ? plan
                : throw new JobPlanException($"Job {jobId} has an incomplete stored plan (scoring.jobs.plan).");
        }
        catch (JsonException ex)
        {
            throw new JobPlanException($"Job {jobId} has a stored plan that cannot be read (scoring.jobs.plan): {ex.Message}");
        }
    }

    private SourceColumn Column(string name) =>
        Columns.FirstOrDefault(c => c.Name == name) ?? throw new JobPlanException($"Column '{name}' is not in the job's plan.");
}
