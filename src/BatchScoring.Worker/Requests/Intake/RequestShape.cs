using BatchScoring.Contracts;

namespace BatchScoring.Worker.Requests.Intake;

/// <summary>The checks every request passes before its model is looked up: ids, model name, row count, row fields.</summary>
internal static class RequestShape
{
    /// <summary>Null when the request is well formed, else what is wrong with it.</summary>
    public static string? Check(ScoreRequest request, int maxRequestRows)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(request.RequestId))
        {
            problems.Add("requestId is required.");
        }
        else if (request.RequestId.Length > 200)
        {
            problems.Add($"requestId has {request.RequestId.Length} characters (at most 200).");
        }

        if (request.Model is null || string.IsNullOrWhiteSpace(request.Model.Name))
        {
            problems.Add("model.name is required.");
        }

        if (request.Rows is null || request.Rows.Count == 0)
        {
            problems.Add("rows must have at least one row.");
        }
        else if (request.Rows.Count > maxRequestRows)
        {
            problems.Add($"rows has {request.Rows.Count} rows (at most {maxRequestRows} per request).");
        }
        else
        {
            for (var i = 0; i < request.Rows.Count && problems.Count < 5; i++)
            {
                var row = request.Rows[i];
                if (row is null)
                {
                    problems.Add($"rows[{i}] is null.");
                }
                else if (row.Key is null)
                {
                    problems.Add($"rows[{i}].key is required.");
                }
                else if (row.Features is null)
                {
                    problems.Add($"rows[{i}].features is required.");
                }
            }
        }

        if (request.ReplyTo is { Length: > 255 })
        {
            problems.Add("replyTo is longer than 255 characters.");
        }

        return problems.Count == 0 ? null : "Invalid request: " + string.Join(" ", problems);
    }
}
