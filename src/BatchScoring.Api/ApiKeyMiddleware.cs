using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BatchScoring.Api;

/// <summary>
/// Checks <c>X-Api-Key</c> (or <c>Authorization: Bearer</c>) on /api routes: reads need any configured key,
/// writes need a full key. Health and metrics stay open for probes and scrapers.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, IOptions<ApiKeyOptions> options)
{
    public const string HeaderName = "X-Api-Key";

    public async Task InvokeAsync(HttpContext context)
    {
        var keys = options.Value;
        if (keys.LocalOnly || !context.Request.Path.StartsWithSegments("/api"))
        {
            await next(context);
            return;
        }

        var presented = Presented(context.Request);
        var isWrite = !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method);
        var canWrite = presented is not null && keys.Keys.Any(k => FixedTimeEquals(k, presented));
        var canRead = canWrite || (presented is not null && keys.ReadOnlyKeys.Any(k => FixedTimeEquals(k, presented)));
        if (!canRead)
        {
            await Problem(context, StatusCodes.Status401Unauthorized, $"Missing or unknown API key: send it in the {HeaderName} header.");
            return;
        }

        if (isWrite && !canWrite)
        {
            await Problem(context, StatusCodes.Status403Forbidden, "This API key is read-only.");
            return;
        }

        await next(context);
    }

    private static string? Presented(HttpRequest request)
    {
        if (request.Headers.TryGetValue(HeaderName, out var key) && !string.IsNullOrEmpty(key))
        {
            return key.ToString();
        }

        var auth = request.Headers.Authorization.ToString();
        return auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth["Bearer ".Length..].Trim() : null;
    }

    private static bool FixedTimeEquals(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(presented));

    private static Task Problem(HttpContext context, int status, string detail) =>
        Results.Problem(detail: detail, statusCode: status).ExecuteAsync(context);
}
