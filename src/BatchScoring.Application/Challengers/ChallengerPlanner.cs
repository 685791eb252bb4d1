using BatchScoring.Contracts;
using BatchScoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace BatchScoring.Application.Challengers;

/// <summary>
/// Plans a job's challenger at submit: resolves <c>name@version</c> (or an alias), refuses a version whose inputs
/// differ from the model's (naming both versions and each difference), maps it over the job's planned columns,
/// creates <c>&lt;table&gt;_challenger</c> like the results table, and adds the challenger to the job's plan.
/// </summary>
public static class ChallengerPlanner
{
    /// <summary>Splits <c>name@versionOrAlias</c>; no <c>@</c>: the latest version.</summary>
    public static (string Name, string? VersionOrAlias) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var at = text.IndexOf('@', StringComparison.Ordinal);
        return at < 0 ? (text.Trim(), null) : (text[..at].Trim(), text[(at + 1)..].Trim());
    }

    /// <summary>What is wrong with the field on its own, or null (empty name or version).</summary>
    public static string? CheckText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (name, version) = Parse(text);
        return name.Length == 0 || version is { Length: 0 }
            ? $"Challenger must be name@version or name@alias, e.g. churn@staging (was '{text}')."
            : null;
    }

    public static async Task<ScoringPlan> PlanAsync(
        SubmitScoringJob request,
        string tenant,
        ModelVersionEntity champion,
        ScoringPlan plan,
        ModelRegistry registry,
        ModelCache models,
        NpgsqlDataSource dataSource,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(champion);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(models);
        var (name, versionOrAlias) = Parse(request.Challenger ?? throw new ArgumentException("The request has no challenger.", nameof(request)));
        var version = await registry.ResolveAsync(name, versionOrAlias, tenant, cancellationToken)
            ?? throw new JobValidationException($"Challenger: {ModelRegistry.NotFound(name, versionOrAlias)}");
        if (version.ModelName == champion.ModelName && version.Version == champion.Version)
        {
            throw new JobValidationException(
                $"Challenger '{version.ModelName}' v{version.Version} is the job's model itself; name another version (e.g. {version.ModelName}@staging).");
        }

        ChallengerPlan challenger;
        using (var championLease = Acquire(models, champion, logger))
        using (var lease = Acquire(models, version, logger))
        {
            var differences = SignatureDifferences(Describe(champion), championLease.Model.Signature, Describe(version), lease.Model.Signature);
            if (differences.Count > 0)
            {
                throw new JobValidationException(
                    $"Challenger {Describe(version)} is not signature-compatible with model {Describe(champion)} (a challenger must take the same inputs): {string.Join("; ", differences)}.");
            }

            try
            {
                plan.MapInputs(lease.Model, request.KeyColumn, request.Passthrough);
            }
            catch (InputMappingException ex)
            {
                throw new JobValidationException($"Challenger {Describe(version)} cannot read the job's input: {ex.Message}", ex);
            }

            var outputs = lease.Model.DescribeOutputs().Select(o => new PlannedOutput(o.Name, o.Kind)).ToArray();
            challenger = ChallengerPlan.Create(version.ModelName, version.Version, version.Sha256, plan.Outputs, outputs);
        }

        var planned = plan with { Challenger = challenger };
        if (request.OutputTable is { } tableName)
        {
            var challengerTable = ChallengerPlan.TableName(tableName);
            try
            {
                await planned.DefineChallengerTable(challengerTable, request.KeyColumn, request.Passthrough).EnsureCreatedAsync(dataSource, cancellationToken);
            }
            catch (Exception ex) when (ex is ArgumentException or ResultTableMismatchException)
            {
                throw new JobValidationException($"Challenger table '{challengerTable}': {ex.Message}", ex);
            }
        }

        return planned;
    }

    /// <summary>
    /// How <paramref name="challenger"/>'s inputs differ from <paramref name="champion"/>'s (names, element types,
    /// shapes, declared feature names); empty when the challenger can be fed exactly what the model is fed.
    /// </summary>
    public static IReadOnlyList<string> SignatureDifferences(string championName, ModelSignature champion, string challengerName, ModelSignature challenger)
    {
        ArgumentNullException.ThrowIfNull(champion);
        ArgumentNullException.ThrowIfNull(challenger);
        var differences = new List<string>();
        var theirs = challenger.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        foreach (var input in champion.Inputs)
        {
            if (!theirs.TryGetValue(input.Name, out var other))
            {
                differences.Add($"input '{input.Name}' ({Type(input)}) of {championName} is missing in {challengerName}");
            }
            else if (Type(input) != Type(other))
            {
                differences.Add($"input '{input.Name}' is {Type(input)} in {championName} but {Type(other)} in {challengerName}");
            }
        }

        var ours = champion.Inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var extra in challenger.Inputs.Where(i => !ours.Contains(i.Name)))
        {
            differences.Add($"{challengerName} has input '{extra.Name}' ({Type(extra)}) that {championName} lacks");
        }

        if (champion.FeatureNames is { } a && challenger.FeatureNames is { } b && !a.SequenceEqual(b, StringComparer.Ordinal))
        {
            differences.Add($"feature names differ: [{string.Join(", ", a)}] in {championName}, [{string.Join(", ", b)}] in {challengerName}");
        }

        return differences;
    }

    private static string Describe(ModelVersionEntity version) => $"'{version.ModelName}' v{version.Version}";

    /// <summary>The input's type and shape as <see cref="TensorInfo.ToString"/> writes it, without the name.</summary>
    private static string Type(TensorInfo input)
    {
        var text = input.ToString();
        var prefix = input.Name + ": ";
        return text.StartsWith(prefix, StringComparison.Ordinal) ? text[prefix.Length..] : text;
    }

    private static ModelLease Acquire(ModelCache models, ModelVersionEntity version, ILogger logger)
    {
        try
        {
            return models.Acquire(version);
        }
        catch (ModelLoadException ex)
        {
            logger.LogError("Model {Model} v{Version} cannot be loaded: {Reason}", version.ModelName, version.Version, ex.Message);
            throw ModelUnavailableException.From(version, ex);
        }
    }
}
