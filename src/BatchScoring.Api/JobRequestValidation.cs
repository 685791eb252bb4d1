using BatchScoring.Contracts;

namespace BatchScoring.Api;

/// <summary>
/// The checks of schemas/submit-scoring-job.schema.json that the C# types do not make (required, ranges, lengths), each
/// reported under the field's JSON path. What needs the model or the input (columns, table shape) is checked by JobSubmitter.
/// </summary>
public static class JobRequestValidation
{
    public const int MaxTextLength = 4096;

    public const int MaxIdempotencyKeyLength = 256;

    public const int MaxColumns = 10_000;

    public static Dictionary<string, string[]> Validate(SubmitScoringJob request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string path, string message)
        {
            if (!errors.TryGetValue(path, out var list))
            {
                errors[path] = list = [];
            }

            list.Add(message);
        }

        void RequireText(string? value, string path)
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                Add(path, "is required and must not be empty");
            }
            else if (value.Length > MaxTextLength)
            {
                Add(path, $"is longer than {MaxTextLength} characters");
            }
        }

        void OptionalText(string? value, string path, int maxLength)
        {
            if (value is null)
            {
                return;
            }

            if (string.IsNullOrWhiteSpace(value))
            {
                Add(path, "must not be empty when given");
            }
            else if (value.Length > maxLength)
            {
                Add(path, $"is longer than {maxLength} characters");
            }
        }

        void Columns(IReadOnlyList<string>? columns, string path)
        {
            if (columns is null)
            {
                return;
            }

            if (columns.Count > MaxColumns)
            {
                Add(path, $"has more than {MaxColumns} columns");
            }

            for (var i = 0; i < columns.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(columns[i]))
                {
                    Add($"{path}[{i}]", "must be a column name, not empty or null");
                }
            }
        }

        RequireText(request.Model, "$.model");
        if (request.InputSql is null)
        {
            if (string.IsNullOrWhiteSpace(request.Input))
            {
                Add("$.input", "missing required field 'input' (a file or directory), or give 'inputSql' and 'inputSource'");
            }
            else if (request.Input.Length > MaxTextLength)
            {
                Add("$.input", $"is longer than {MaxTextLength} characters");
            }

            OptionalText(request.InputSource, "$.inputSource", 128);
        }
        else
        {
            OptionalText(request.InputSql, "$.inputSql", BatchScoring.Application.SqlInputs.MaxQueryLength);
            RequireText(request.InputSource, "$.inputSource");
            if (!string.IsNullOrEmpty(request.Input))
            {
                Add("$.input", "give 'input' (files) or 'inputSql' (a query), not both");
            }
        }
        RequireText(request.KeyColumn, "$.keyColumn");
        OptionalText(request.ModelVersion, "$.modelVersion", 64);
        OptionalText(request.OutputTable, "$.outputTable", 127);
        OptionalText(request.OutputParquet, "$.outputParquet", MaxTextLength);
        OptionalText(request.IdempotencyKey, "$.idempotencyKey", MaxIdempotencyKeyLength);
        OptionalText(request.Challenger, "$.challenger", 256);
        if (request.OutputTable is null && request.OutputParquet is null)
        {
            Add("$.outputTable", "give an output: outputTable (a PostgreSQL table) and/or outputParquet (a directory)");
        }

        if (request.Passthrough is null)
        {
            Add("$.passthrough", "must be an array of column names (or left out)");
        }

        Columns(request.Passthrough, "$.passthrough");
        Columns(request.Features, "$.features");
        if (request.ChunkRows is < 1)
        {
            Add("$.chunkRows", $"must be at least 1 (was {request.ChunkRows})");
        }

        if (request.BatchRows is < 1)
        {
            Add("$.batchRows", $"must be at least 1 (was {request.BatchRows})");
        }

        if (request.MaxFailedRows is < 0)
        {
            Add("$.maxFailedRows", $"must not be negative (was {request.MaxFailedRows})");
        }

        if (request.MaxFailedPercent is { } percent && (double.IsNaN(percent) || percent is < 0 or > 100))
        {
            Add("$.maxFailedPercent", $"must be between 0 and 100 (was {percent})");
        }

        return errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }
}
