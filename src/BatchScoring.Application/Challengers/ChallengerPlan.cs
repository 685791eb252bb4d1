using BatchScoring.Scoring.Data;

namespace BatchScoring.Application.Challengers;

/// <summary>
/// The challenger of a job, planned by the submitter and stored in the job's plan (<c>jobs.plan → challenger</c>): the
/// resolved version, its output columns, and which columns the comparison reads from each version's results.
/// </summary>
public sealed record ChallengerPlan(
    string Model,
    int Version,
    string Sha256,
    IReadOnlyList<PlannedOutput> Outputs,
    string? ChampionLabel,
    string? ChallengerLabel,
    string? ChampionScore,
    string? ChallengerScore)
{
    public const string TableSuffix = "_challenger";

    public const string ParquetFolder = "challenger";

    /// <summary>The challenger's result table beside the job's: <c>&lt;table&gt;_challenger</c>, same schema.</summary>
    public static string TableName(string outputTable)
    {
        ArgumentNullException.ThrowIfNull(outputTable);
        return outputTable + TableSuffix;
    }

    public static string ParquetPath(string outputParquet) => Path.Combine(outputParquet, ParquetFolder);

    /// <summary>Plans the comparison of <paramref name="champion"/> and <paramref name="challenger"/> outputs.</summary>
    public static ChallengerPlan Create(
        string model, int version, string sha256, IReadOnlyList<PlannedOutput> champion, IReadOnlyList<PlannedOutput> challenger)
    {
        ArgumentNullException.ThrowIfNull(champion);
        ArgumentNullException.ThrowIfNull(challenger);
        var championLabel = LabelColumn(champion);
        var challengerLabel = LabelColumn(challenger);
        var championScore = ScoreColumn(champion);

        // The same column on both sides when the challenger has it (same classes); else the challenger's own primary score.
        var challengerScore = championScore is not null && challenger.Any(o => o.Name == championScore && IsNumeric(o.Kind))
            ? championScore
            : ScoreColumn(challenger);
        return new ChallengerPlan(
            model, version, sha256, challenger,
            championLabel is null || challengerLabel is null ? null : championLabel,
            championLabel is null || challengerLabel is null ? null : challengerLabel,
            championScore is null || challengerScore is null ? null : championScore,
            championScore is null || challengerScore is null ? null : challengerScore);
    }

    /// <summary>The predicted label of a classifier: an output named <c>label</c> (or <c>…_label</c>) of a scalar, non-float kind.</summary>
    public static string? LabelColumn(IReadOnlyList<PlannedOutput> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        return outputs.FirstOrDefault(o =>
            (o.Name == "label" || o.Name.EndsWith("_label", StringComparison.Ordinal))
            && o.Kind is ColumnKind.Int64 or ColumnKind.Int32 or ColumnKind.String or ColumnKind.Boolean)?.Name;
    }

    /// <summary>
    /// The primary score: for a classifier with class probabilities (<c>probability_&lt;class&gt;</c>), the last class's
    /// (the positive class of a binary model); otherwise the first floating-point output.
    /// </summary>
    public static string? ScoreColumn(IReadOnlyList<PlannedOutput> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var numeric = outputs.Where(o => o.Kind is ColumnKind.Float32 or ColumnKind.Float64).ToArray();
        return numeric.LastOrDefault(o => o.Name.StartsWith("probability_", StringComparison.Ordinal))?.Name
            ?? numeric.FirstOrDefault()?.Name;
    }

    private static bool IsNumeric(ColumnKind kind) => kind is ColumnKind.Float32 or ColumnKind.Float64;
}
