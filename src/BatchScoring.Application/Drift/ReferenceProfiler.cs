using System.Text.Json;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Drift;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application.Drift;

/// <summary>A request to build a model version's reference profile from a dataset the service can read.</summary>
public sealed record ProfileRequest
{
    /// <summary>Version number (3 or "3") or alias; default: the latest version.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(BatchScoring.Contracts.StringOrNumberConverter))]
    public string? Version { get; init; }

    /// <summary>Parquet or CSV file, or a directory of them (as for jobs).</summary>
    public required string Input { get; init; }

    /// <summary>Input columns that are not features (e.g. the key), when the model takes numeric columns by position.</summary>
    public string? KeyColumn { get; init; }

    /// <summary>Feature columns in model order, for a model with one [N, F] input (as for jobs).</summary>
    public IReadOnlyList<string>? Features { get; init; }
}

/// <summary>A model version's reference profile: features first, then prediction columns.</summary>
public sealed record ModelProfile(string Model, int Version, string Source, long Rows, IReadOnlyList<ColumnProfile> Features, IReadOnlyList<ColumnProfile> Predictions, DateTimeOffset CreatedAt);

/// <summary>A profile that cannot be built; the message names the model, file or column.</summary>
public sealed class DriftProfileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Builds a model version's reference profile from a dataset: reads it chunk by chunk (as jobs do), profiles every
/// feature the model reads, scores the rows to profile the predictions too, and stores the result in
/// <c>scoring.model_profiles</c>. Memory is bounded by one chunk plus each column's reservoir.
/// </summary>
public sealed class ReferenceProfiler(ModelStore store, DriftStore drift, ModelCache models, IOptions<BatchScoringOptions> options, ILogger<ReferenceProfiler> logger)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Values kept over all numeric reservoirs of one profile (8 bytes each: 160 MB at most).</summary>
    private const int MaxReservoirValues = 20_000_000;

    public async Task<ModelProfile> BuildAsync(string model, ProfileRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var version = await store.ResolveModelAsync(model, request.Version, cancellationToken)
            ?? throw new DriftProfileException(ModelRegistry.NotFound(model, request.Version));
        DatasetPlan plan;
        try
        {
            var roots = options.Value.GetStorageRoots();
            plan = await Dataset.PlanAsync(roots.Confine(request.Input, nameof(request.Input)), options.Value.DefaultChunkRows, roots, cancellationToken);
        }
        catch (PathNotAllowedException ex)
        {
            throw new DriftProfileException(ex.Message, ex);
        }
        catch (DatasetException ex)
        {
            throw new DriftProfileException($"Input: {ex.Message}", ex);
        }

        using var lease = models.Acquire(version);
        InputMapping mapping;
        try
        {
            mapping = lease.Model.MapInputs(
                plan.Columns.Select(c => (c.Name, c.Kind)).ToArray(), new InputMappingRequest { KeyColumn = request.KeyColumn, Features = request.Features });
        }
        catch (InputMappingException ex)
        {
            throw new DriftProfileException($"Model '{version.ModelName}' v{version.Version} cannot read this input: {ex.Message}", ex);
        }

        var featureNames = mapping.Bindings.Select(b => b.Column).Distinct(StringComparer.Ordinal).ToList();
        var featureColumns = plan.Columns.Where(c => featureNames.Contains(c.Name) && Profiled(c.Kind)).ToList();
        // An output named like a feature would be ambiguous in the samples: the feature wins.
        var outputColumns = lease.Model.DescribeOutputs().Where(o => Profiled(o.Kind) && !featureNames.Contains(o.Name)).ToList();

        // Reservoirs share a budget, so a model with a thousand features does not hold 100,000 values for each.
        var reservoir = Math.Clamp(MaxReservoirValues / Math.Max(1, featureColumns.Count + outputColumns.Count), 10_000, 100_000);
        var features = featureColumns.Select(c => new ColumnProfileBuilder(c.Name, KindOf(c.Kind), reservoir)).ToList();
        var predictions = outputColumns.Select(o => new ColumnProfileBuilder(o.Name, KindOf(o.Kind), reservoir)).ToList();
        if (features.Count == 0 && predictions.Count == 0)
        {
            throw new DriftProfileException($"Model '{version.ModelName}' v{version.Version}: no numeric or text feature or prediction column to profile.");
        }

        var readColumns = plan.Columns.Where(c => mapping.RequiredColumns.Contains(c.Name)).ToList();
        var batchRows = options.Value.DefaultBatchRows;
        long rows = 0;
        foreach (var chunk in plan.Chunks)
        {
            var source = await Dataset.ReadChunkAsync(plan.Format, chunk, readColumns, cancellationToken);
            for (var start = 0; start < source.Batch.RowCount; start += batchRows)
            {
                var count = Math.Min(batchRows, source.Batch.RowCount - start);
                var slice = source.Batch.Slice(start, count);
                var result = lease.Model.Score(slice, mapping, new ScoreOptions(), cancellationToken);
                foreach (var builder in features)
                {
                    ColumnValues.Feed(slice[builder.Name], result.ScoredRows, builder.Add, builder.Add, builder.AddMissing);
                }

                foreach (var builder in predictions)
                {
                    ColumnValues.Feed(result.Outputs[builder.Name], null, builder.Add, builder.Add, builder.AddMissing);
                }

                rows += result.ScoredRows.Length;
            }
        }

        if (rows == 0)
        {
            throw new DriftProfileException($"Input '{request.Input}' has no row the model could score.");
        }

        var profile = new ModelProfile(
            version.ModelName, version.Version, Path.GetFullPath(request.Input), rows,
            features.Select(b => b.Build()).ToList(), predictions.Select(b => b.Build()).ToList(), DateTimeOffset.UtcNow);
        await drift.SaveProfileAsync(profile.Model, profile.Version, profile.Source, rows, Serialize(profile), cancellationToken);
        logger.LogInformation(
            "Model {Model} v{Version}: reference profile of {Features} features and {Predictions} predictions from {Rows} rows of {Input}",
            profile.Model, profile.Version, profile.Features.Count, profile.Predictions.Count, rows, profile.Source);
        return profile;
    }

    /// <summary>The stored profile of a model version (null when it has none).</summary>
    public async Task<ModelProfile?> GetAsync(string model, int version, CancellationToken cancellationToken)
    {
        var stored = await drift.GetProfileAsync(model, version, cancellationToken);
        if (stored is null)
        {
            return null;
        }

        var columns = JsonSerializer.Deserialize<StoredColumns>(stored.ColumnsJson, Json)
            ?? throw new InvalidOperationException($"The profile of {model} v{version} is empty.");
        return new ModelProfile(model, version, stored.Source, stored.RowCount, columns.Features, columns.Predictions, stored.CreatedAt);
    }

    private static string Serialize(ModelProfile profile) => JsonSerializer.Serialize(new StoredColumns(profile.Features, profile.Predictions), Json);

    internal static bool Profiled(ColumnKind kind) => kind is not (ColumnKind.Float32List or ColumnKind.Timestamp);

    internal static ProfileColumnKind KindOf(ColumnKind kind) => kind == ColumnKind.String ? ProfileColumnKind.Categorical : ProfileColumnKind.Numeric;

    private sealed record StoredColumns(IReadOnlyList<ColumnProfile> Features, IReadOnlyList<ColumnProfile> Predictions);
}
