using System.Globalization;
using BatchScoring.Application;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using BatchScoring.Worker.Requests.Batching;
using BatchScoring.Worker.Requests.Intake;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Worker.Requests.Lanes;

/// <summary>
/// What request scoring needs for one model version: the named features that feed the model (and as what type), the
/// input mapping built from them, and the results table.
/// </summary>
internal sealed record RequestLanePlan(ModelVersionEntity Version, InputMapping Mapping, IReadOnlyList<RequestFeature> Features, ResultTable Table)
{
    /// <summary>Plans request scoring for a model version and creates its results table. Throws <see cref="ScoreRequestRejectedException"/> when the model cannot be fed from named features.</summary>
    public static async Task<RequestLanePlan> CreateAsync(
        ModelVersionEntity version, ModelCache models, NpgsqlDataSource dataSource, ILogger logger, CancellationToken cancellationToken)
    {
        InputMapping mapping;
        List<RequestFeature> features;
        IReadOnlyList<(string Name, ColumnKind Kind)> outputs;
        using (var lease = models.Acquire(version))
        {
            var signature = lease.Model.Signature;
            features = PlanFeatures(signature);
            try
            {
                mapping = lease.Model.MapInputs(features.Select(f => (f.Name, f.Kind)).ToArray(), new InputMappingRequest { KeyColumn = PendingRequest.KeyColumn });
            }
            catch (InputMappingException ex)
            {
                throw new ScoreRequestRejectedException($"Model '{version.ModelName}' v{version.Version} cannot be scored from named features: {ex.Message}");
            }

            // Keep only the features the mapping reads (in model order), with the kinds it binds.
            var needed = mapping.RequiredColumns.ToHashSet(StringComparer.Ordinal);
            features = features.Where(f => needed.Contains(f.Name)).ToList();
            outputs = lease.Model.DescribeOutputs();
        }

        var baseName = ResultTable.NormalizeColumnName("request_results_" + version.ModelName);
        var outputColumns = outputs.Select(o => new ResultColumn(o.Name, o.Kind)).ToArray();
        ResultTable Define(string name) =>
            ResultTable.Define(ResultTable.DefaultSchema + "." + name, new ResultColumn(PendingRequest.KeyColumn, ColumnKind.String), [], outputColumns);

        ResultTable table;
        try
        {
            table = Define(baseName);
        }
        catch (ArgumentException ex)
        {
            throw new ScoreRequestRejectedException($"Model '{version.ModelName}' v{version.Version} cannot be scored in request mode: {ex.Message}");
        }

        try
        {
            await table.EnsureCreatedAsync(dataSource, cancellationToken);
        }
        catch (ResultTableMismatchException ex)
        {
            // Another version of the model has other outputs: this version gets its own table.
            var suffix = "_v" + version.Version.ToString(CultureInfo.InvariantCulture);
            var versioned = (baseName.Length + suffix.Length > 63 ? baseName[..(63 - suffix.Length)] : baseName) + suffix;
            logger.ResultTableOfItsOwn(version.ModelName, version.Version, ex.Message, versioned);
            table = Define(versioned);
            await table.EnsureCreatedAsync(dataSource, cancellationToken);
        }

        return new RequestLanePlan(version, mapping, features, table);
    }

    /// <summary>
    /// The named features of a model: its feature_names metadata (single [N, F] input), else a list feature named
    /// after that input, else one feature per input (named like the input, typed by its element type).
    /// </summary>
    private static List<RequestFeature> PlanFeatures(ModelSignature signature)
    {
        if (signature.Inputs is [{ Kind: ValueKind.Tensor, ElementType: TensorElementKind.Float or TensorElementKind.Double, Shape.Length: 2 } single])
        {
            if (signature.FeatureNames is { } names)
            {
                return names.Select(n => new RequestFeature(n, ColumnKind.Float32, 0)).ToList();
            }

            var width = single.Shape[1] > 0 ? (int)single.Shape[1] : -1;
            return [new RequestFeature(single.Name, ColumnKind.Float32List, width)];
        }

        return signature.Inputs.Select(i => new RequestFeature(i.Name, i.ElementType switch
        {
            TensorElementKind.Double => ColumnKind.Float64,
            TensorElementKind.Int64 or TensorElementKind.UInt32 => ColumnKind.Int64,
            TensorElementKind.Int32 or TensorElementKind.Int16 or TensorElementKind.Int8 or TensorElementKind.UInt16 or TensorElementKind.UInt8 => ColumnKind.Int32,
            TensorElementKind.Bool => ColumnKind.Boolean,
            TensorElementKind.String => ColumnKind.String,
            _ => ColumnKind.Float32,
        }, 0)).ToList();
    }
}
