using BatchScoring.Scoring.Data;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>A feature a request row must carry for a model version, and the column kind it is converted to.</summary>
internal sealed record RequestFeature(string Name, ColumnKind Kind, int ListLength);
