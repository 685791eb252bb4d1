using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using BatchScoring.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Api;

/// <summary>What an API key may do: each /api endpoint requires one scope.</summary>
public static class ApiScopes
{
    /// <summary>Submit, cancel and retry jobs.</summary>
    public const string Submit = "submit";

    /// <summary>Read jobs, models, aliases, profiles and drift reports.</summary>
    public const string Read = "read";

    /// <summary>Register models, move aliases, build profiles, run drift audits.</summary>
    public const string Admin = "admin";

    public static readonly IReadOnlyList<string> All = [Submit, Read, Admin];

    public const string ClaimType = "scope";

    public const string TenantClaimType = "tenant";
}

public static class ApiCaller
{
    /// <summary>The tenant of the key that made the request (every request reaching an endpoint is authenticated).</summary>
    public static string Tenant(this ClaimsPrincipal user) =>
        user?.FindFirstValue(ApiScopes.TenantClaimType) ?? throw new InvalidOperationException("The request has no authenticated tenant.");
}

/// <summary>
/// Checks <c>X-Api-Key</c> (or <c>Authorization: Bearer</c>): the presented key's SHA-256 is compared, in constant time,
/// with every configured key's SHA-256, so neither the comparison nor the configuration holds the key in clear text.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptions<ApiKeyOptions> keyOptions,
    ApiKeyGrants grants,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "ApiKey";

    public const string HeaderName = "X-Api-Key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (keyOptions.Value.LocalOnly)
        {
            return Task.FromResult(Success("local", Tenants.Default, ApiScopes.All));
        }

        if (Presented(Request) is not { } presented)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        ApiKeyGrant? match = null;
        foreach (var grant in grants.All)
        {
            // No early exit: the time taken does not depend on which key matched.
            if (CryptographicOperations.FixedTimeEquals(grant.Sha256, hash))
            {
                match = grant;
            }
        }

        return Task.FromResult(match is null
            ? AuthenticateResult.Fail("Unknown API key.")
            : Success(match.Name, match.Tenant, match.Scopes));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var detail = Presented(Request) is null
            ? $"This request needs an API key: send it in the {HeaderName} header (or Authorization: Bearer)."
            : "The API key is not valid.";
        Response.Headers.WWWAuthenticate = $"{HeaderName}";
        return WriteProblemAsync(StatusCodes.Status401Unauthorized, "Unauthorized", detail);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var needed = Context.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>()
            .Select(a => a.Policy).OfType<string>().Distinct().ToArray() ?? [];
        var detail = needed.Length == 0
            ? "This API key may not do this."
            : $"This API key lacks the '{string.Join("', '", needed)}' scope that {Request.Method} {Request.Path} needs.";
        return WriteProblemAsync(StatusCodes.Status403Forbidden, "Forbidden", detail);
    }

    private async Task WriteProblemAsync(int status, string title, string detail)
    {
        Response.StatusCode = status;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }

    private AuthenticateResult Success(string name, string tenant, IEnumerable<string> scopes)
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.Name, name),
                new Claim(ApiScopes.TenantClaimType, tenant),
                .. scopes.Select(s => new Claim(ApiScopes.ClaimType, s)),
            ],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
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
}

/// <summary>The configured keys, hashed once (handlers are created per request).</summary>
internal sealed class ApiKeyGrants(IOptions<ApiKeyOptions> options)
{
    private readonly Lazy<IReadOnlyList<ApiKeyGrant>> _all = new(() => options.Value.Grants());

    public IReadOnlyList<ApiKeyGrant> All => _all.Value;
}
