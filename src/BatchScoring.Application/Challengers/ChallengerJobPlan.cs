using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;

namespace BatchScoring.Application.Challengers;

/// <summary>What a worker needs to score a job's challenger beside its model: the plan, the version, its input mapping and outputs.</summary>
public sealed record ChallengerJobPlan(
    ChallengerPlan Plan,
    ModelVersionEntity ModelVersion,
    InputMapping Mapping,
    ResultTable? Table,
    string? OutputParquet,
    IReadOnlyList<SourceColumn> PartColumns);
