using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application.Challengers;

/// <summary>
/// What one chunk compared between champion and challenger: the rows both scored, how many of them the challenger
/// could not score, label agreement and the differences of the primary score. Stored in the chunk's commit
/// (<c>scoring.challenger_chunk_stats</c>) and merged when the job ends.
/// </summary>
public sealed class ChunkComparison(ChallengerPlan plan)
{
    public long RowsCompared { get; private set; }

    public long ChallengerFailedRows { get; private set; }

    public long LabelsCompared { get; private set; }

    public long LabelsAgreed { get; private set; }

    public ScoreDifferenceSketch Differences { get; } = new();

    /// <summary>Adds one batch: <paramref name="champion"/> and <paramref name="challenger"/> scored the same slice.</summary>
    public void Add(ScoreResult champion, ScoreResult challenger)
    {
        ArgumentNullException.ThrowIfNull(champion);
        ArgumentNullException.ThrowIfNull(challenger);
        var championLabel = plan.ChampionLabel is { } cl ? champion.Outputs.Find(cl) : null;
        var challengerLabel = plan.ChallengerLabel is { } hl ? challenger.Outputs.Find(hl) : null;
        var championScore = plan.ChampionScore is { } cs ? Numeric(champion.Outputs.Find(cs)) : null;
        var challengerScore = plan.ChallengerScore is { } hs ? Numeric(challenger.Outputs.Find(hs)) : null;

        // Both lists of scored rows are ascending positions in the slice: walk them together.
        var a = champion.ScoredRows;
        var b = challenger.ScoredRows;
        int i = 0, j = 0;
        while (i < a.Length)
        {
            while (j < b.Length && b[j] < a[i])
            {
                j++;
            }

            if (j >= b.Length || b[j] != a[i])
            {
                ChallengerFailedRows++;
                i++;
                continue;
            }

            RowsCompared++;
            if (championLabel is not null && challengerLabel is not null)
            {
                LabelsCompared++;
                if (Equals(championLabel.GetValue(i), challengerLabel.GetValue(j)))
                {
                    LabelsAgreed++;
                }
            }

            if (championScore is not null && challengerScore is not null
                && championScore(i) is { } x && challengerScore(j) is { } y)
            {
                Differences.Add(x - y);
            }

            i++;
            j++;
        }
    }

    /// <summary>Reads a float output as double (nulls as null); null for a column that is missing or not floating-point.</summary>
    private static Func<int, double?>? Numeric(BatchColumn? column) => column?.Kind switch
    {
        ColumnKind.Float32 => row => column.IsNull(row) ? null : column.As<float>()[row],
        ColumnKind.Float64 => row => column.IsNull(row) ? null : column.As<double>()[row],
        _ => null,
    };
}
