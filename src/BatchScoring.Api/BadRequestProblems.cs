using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace BatchScoring.Api;

/// <summary>
/// Turns a request body the endpoint could not read (malformed JSON, a wrong type, a missing required field) into a
/// 400 problem that says what and where — System.Text.Json's message names the JSON path — instead of an empty 400.
/// Needs <c>RouteHandlerOptions.ThrowOnBadRequest</c>, which makes minimal APIs throw rather than answer silently.
/// </summary>
internal sealed class BadRequestProblems(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            var detail = ex.InnerException is JsonException json
                ? $"The request body is not valid: {json.Message}"
                : ex.Message;
            await Results.Problem(detail, statusCode: ex.StatusCode, title: "Invalid request").ExecuteAsync(context);
        }
    }
}
