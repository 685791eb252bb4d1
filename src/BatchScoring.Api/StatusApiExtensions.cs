using System.Text.Json.Serialization;
using BatchScoring.Application;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BatchScoring.Api;

public static class StatusApiExtensions
{
    /// <summary>JSON nesting allowed in request bodies; the service's own bodies need fewer than 8 levels.</summary>
    public const int MaxJsonDepth = 32;

    /// <summary>
    /// Services of the status API: API keys (authentication, one authorization policy per scope), problem details for every
    /// error, strict JSON bodies, OpenAPI (the host maps /metrics and /health).
    /// </summary>
    public static IHostApplicationBuilder AddStatusApi(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<ApiKeyOptions>().BindConfiguration(ApiKeyOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ApiKeyOptions>, ApiKeyOptionsValidator>();
        builder.Services.AddSingleton<ApiKeyGrants>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        var policies = builder.Services.AddAuthorizationBuilder();
        foreach (var scope in ApiScopes.All)
        {
            policies.AddPolicy(scope, p => p.RequireClaim(ApiScopes.ClaimType, scope));
        }

        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = DescribeStatusCode);
        builder.Services.AddExceptionHandler<ApiExceptionHandler>();
        builder.Services.AddOptions<FormOptions>().Configure<IOptions<ApiKeyOptions>>((form, keys) => form.MultipartBodyLengthLimit = keys.Value.MaxModelBytes);
        builder.Services.AddScoped<JobQueries>();
        builder.Services.AddScoped<JobCommands>();
        builder.Services.AddSingleton<JobChangeListener>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<JobChangeListener>());
        builder.Services.AddOpenApi(OpenApiContract.Configure);
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter());

            // A misspelt field would otherwise be dropped silently and the job run with a default.
            o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            o.SerializerOptions.MaxDepth = MaxJsonDepth;
        });
        return builder;
    }

    /// <summary>A detail for the bare status codes (unknown route, wrong method) that status-code pages turn into problems.</summary>
    private static void DescribeStatusCode(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if (problem.Detail is not null)
        {
            return;
        }

        var request = context.HttpContext.Request;
        var allow = context.HttpContext.Response.Headers.Allow.ToString();
        problem.Detail = problem.Status switch
        {
            StatusCodes.Status404NotFound => $"There is nothing at {request.Method} {request.Path}; docs/http-api.md lists the routes.",
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {request.Path}" + (allow.Length > 0 ? $"; use {allow}." : "."),
            StatusCodes.Status413PayloadTooLarge => ApiExceptionHandler.TooLarge(
                context.HttpContext, context.HttpContext.RequestServices.GetRequiredService<IOptions<ApiKeyOptions>>().Value.MaxBodyBytes),
            StatusCodes.Status415UnsupportedMediaType => "Send the body as application/json.",
            _ => problem.Title,
        };
    }

    public static WebApplication MapStatusApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRouting();
        app.UseMiddleware<RequestBodyLimits>();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapJobsApi();
        app.MapModelsApi();
        app.MapDriftApi();
        app.MapPerformanceApi();
        app.MapSchedulesApi();
        app.MapStatusPage();
        app.MapOpenApi();
        return app;
    }
}
