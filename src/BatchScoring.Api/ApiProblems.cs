using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using BatchScoring.Application;
using BatchScoring.Application.Drift;
using BatchScoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Api;

/// <summary>Problem details (RFC 7807) the endpoints return for expected failures.</summary>
public static class ApiProblems
{
    public static ProblemHttpResult NotFound(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    public static ProblemHttpResult BadRequest(string detail, string title = "Invalid request") =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status400BadRequest, title: title);

    public static ProblemHttpResult Conflict(string detail, string title = "Conflict") =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: title);

    /// <summary>A 400 that lists each invalid field under its JSON path (<c>errors</c>) and sums them up in <c>detail</c>.</summary>
    public static ValidationProblem Invalid(IDictionary<string, string[]> errors, string title = "Invalid request") =>
        TypedResults.ValidationProblem(
            errors,
            detail: string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")) + ".",
            title: title);
}

/// <summary>
/// Answers every exception that reaches the pipeline with a problem: known ones with their status and message, anything
/// else with a 500 that names only the trace id (the exception goes to the log, never to the client).
/// </summary>
internal sealed partial class ApiExceptionHandler(IProblemDetailsService problems, IOptions<ApiKeyOptions> limits, ILogger<ApiExceptionHandler> logger)
    : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            httpContext.Response.StatusCode = 499; // the client went away: nobody reads an answer
            return true;
        }

        var (status, title, detail, errors) = Describe(httpContext, exception);
        if (status >= 500)
        {
            logger.LogError(exception, "{Method} {Path} failed", httpContext.Request.Method, httpContext.Request.Path);
        }

        // Only the unexpected hides its message; a 503 (a source or the database not there yet) says what to do.
        if (status == 500)
        {
            detail = $"An unexpected error occurred; the service log has the details under trace id {httpContext.TraceIdentifier}.";
        }

        httpContext.Response.StatusCode = status;
        var problem = errors is null
            ? new ProblemDetails()
            : new HttpValidationProblemDetails(errors);
        problem.Status = status;
        problem.Title = title;
        problem.Detail = detail;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }

    private (int Status, string Title, string Detail, Dictionary<string, string[]>? Errors) Describe(HttpContext context, Exception exception)
    {
        switch (exception)
        {
            case BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }:
                return (413, "Request body too large", TooLarge(context), null);
            case InvalidDataException when exception.Message.Contains("body length limit", StringComparison.OrdinalIgnoreCase):
                return (413, "Request body too large", TooLarge(context), null);
            case BadHttpRequestException { InnerException: JsonException json } bad:
                var (path, what) = DescribeJson(json);
                return (bad.StatusCode, "Invalid request body", $"The request body is not valid: {path}: {what}", new() { [path] = [what] });
            case BadHttpRequestException bad:
                return (bad.StatusCode, "Invalid request", DescribeBinding(bad.Message), null);
            case JobValidationException:
                return (400, "Invalid job request", exception.Message, null);
            case ModelRegistrationException:
                return (400, "Invalid model", exception.Message, null);
            case DriftProfileException:
                return (400, "Cannot use the model's profile or samples", exception.Message, null);
            case IdempotencyConflictException:
                return (409, "Idempotency key reused", exception.Message, null);
            case ModelNameTakenException:
                return (409, "Model name taken", exception.Message, null);
            case ModelVersionArchivedException:
                return (409, "Model version archived", exception.Message, null);
            case ModelVersionInUseException:
                return (409, "Model version in use", exception.Message, null);
            case AliasMovedException:
                return (409, "Alias moved meanwhile", exception.Message, null);
            case ModelUnavailableException:
                return (409, "Model cannot be used", exception.Message, null);
            case InputSourceUnavailableException:
                return (503, "Input source unavailable", exception.Message, null);
            case DatabaseNotMigratedException:
                return (503, "Database not migrated", $"The service's {exception.Message}.", null);
            case ModelLoadException:
                return (409, "Model cannot be used", "A registered model's stored file cannot be loaded; register the model again. The service log names the file.", null);
            default:
                return (500, "Internal error", "", null);
        }
    }

    private string TooLarge(HttpContext context) => TooLarge(context, limits.Value.MaxBodyBytes);

    internal static string TooLarge(HttpContext context, long configured)
    {
        var limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? configured;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"The request body is larger than the limit of {limit:N0} bytes for {context.Request.Method} {context.Request.Path} (BatchScoring:Api:MaxBodyBytes; model uploads: MaxModelBytes).");
    }

    /// <summary>System.Text.Json's message, in the terms of the request: the JSON path and what is wrong there, no .NET type names.</summary>
    internal static (string Path, string What) DescribeJson(JsonException json)
    {
        var path = string.IsNullOrEmpty(json.Path) ? "$" : json.Path;
        var message = json.Message;
        if (UnmappedPattern().Match(message) is { Success: true } unmapped)
        {
            var field = unmapped.Groups["name"].Value;
            var fieldPath = path.EndsWith("." + field, StringComparison.Ordinal) || path.EndsWith($"['{field}']", StringComparison.Ordinal) ? path : $"{path}.{field}";
            return (fieldPath, $"unknown field '{field}'; the body's schema does not have it (fields are listed in schemas/ and docs/http-api.md)");
        }

        if (MissingPattern().Match(message) is { Success: true } missing)
        {
            return (path, $"missing required field(s) {missing.Groups["names"].Value.TrimEnd('.')}");
        }

        if (ConvertPattern().Match(message) is { Success: true } convert)
        {
            return (path, $"expected {FriendlyType(convert.Groups["type"].Value)}");
        }

        if (message.Contains("maximum configured depth", StringComparison.Ordinal))
        {
            return (path, "the JSON is nested too deeply");
        }

        // Syntax errors: keep the reader's words, drop its position suffix (the path says where).
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var text = (cut > 0 ? message[..cut] : message).Trim();
        return (path, $"malformed JSON: {text}");
    }

    private static string FriendlyType(string dotnetType)
    {
        var type = NullablePattern().Match(dotnetType) is { Success: true } n ? n.Groups["inner"].Value : dotnetType;
        return type switch
        {
            "System.Int32" => "a whole number between -2147483648 and 2147483647",
            "System.Int64" => "a whole number",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.Boolean" => "true or false",
            "System.String" => "a string",
            "System.Guid" => "a UUID string",
            _ when type.Contains("List", StringComparison.Ordinal) || type.EndsWith("[]", StringComparison.Ordinal) => "an array",
            _ => "a value of another type",
        };
    }

    /// <summary>"Failed to bind parameter "int? limit" from "abc"." → "Query parameter 'limit' must be a whole number (was 'abc')."</summary>
    private static string DescribeBinding(string message)
    {
        if (BindPattern().Match(message) is { Success: true } bind)
        {
            return $"Parameter '{bind.Groups["name"].Value}' must be {FriendlyType(CSharpToDotnet(bind.Groups["type"].Value))} (was '{bind.Groups["value"].Value}').";
        }

        return message.StartsWith("Implicit body inferred", StringComparison.Ordinal) || message.StartsWith("Required parameter", StringComparison.Ordinal)
            ? "The request needs a JSON body."
            : message;
    }

    private static string CSharpToDotnet(string type) => (type.StartsWith("Nullable<", StringComparison.Ordinal) ? type[9..^1] : type.TrimEnd('?')) switch
    {
        "int" => "System.Int32",
        "long" => "System.Int64",
        "double" => "System.Double",
        "bool" => "System.Boolean",
        "Guid" => "System.Guid",
        var other => other,
    };

    [GeneratedRegex("The JSON property '(?<name>[^']*)' could not be mapped")]
    private static partial Regex UnmappedPattern();

    [GeneratedRegex("missing required properties including: (?<names>.*)")]
    private static partial Regex MissingPattern();

    [GeneratedRegex("could not be converted to (?<type>[^ ]+?)\\.( Path|$)")]
    private static partial Regex ConvertPattern();

    [GeneratedRegex("^System\\.Nullable`1\\[(?<inner>.+)\\]$")]
    private static partial Regex NullablePattern();

    [GeneratedRegex("Failed to bind parameter \"(?<type>\\S+) (?<name>\\w+)\" from \"(?<value>.*)\"")]
    private static partial Regex BindPattern();
}

/// <summary>Sets the body size limit of the matched endpoint: model uploads get MaxModelBytes, everything else MaxBodyBytes.</summary>
internal sealed class RequestBodyLimits(RequestDelegate next, IOptions<ApiKeyOptions> options)
{
    public Task InvokeAsync(HttpContext context)
    {
        var limits = options.Value;
        var feature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            feature.MaxRequestBodySize = context.GetEndpoint()?.Metadata.GetMetadata<ModelUploadEndpoint>() is null
                ? limits.MaxBodyBytes
                : limits.MaxModelBytes;
        }

        return next(context);
    }
}

/// <summary>Endpoint metadata: the body is a model file, limited by MaxModelBytes instead of MaxBodyBytes.</summary>
internal sealed class ModelUploadEndpoint;
