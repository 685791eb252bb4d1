using System.Text.Json;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace BatchScoring.IntegrationTests.Interfaces;

/// <summary>/openapi/v1.json of a running service against the routes the service really maps.</summary>
public sealed class OpenApiDocumentTests(ServerFixture servers)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_document_has_exactly_the_routes_with_the_api_key_scheme_problem_answers_the_upload_body_and_integer_types()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "openapi", ServiceRoles.Api, Ct);
        var text = await host.Client.GetStringAsync("/openapi/v1.json", Ct);
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "openapi-v1.json"), text); // for a look after a failure
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;

        // Paths and methods, both directions.
        var documented = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in root.GetProperty("paths").EnumerateObject())
        {
            foreach (var method in path.Value.EnumerateObject().Where(m => m.Name is "get" or "put" or "post" or "delete" or "patch" or "head" or "options"))
            {
                documented.Add($"{method.Name.ToUpperInvariant()} {path.Name}");
            }
        }

        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m => $"{m} {Template(e)}"))
            .ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(routes);
        Assert.True(routes.Count > 30, $"only {routes.Count} routes found: {string.Join(", ", routes)}");
        Assert.True(routes.SetEquals(documented),
            $"mapped but not documented: {string.Join(", ", routes.Except(documented))}; documented but not mapped: {string.Join(", ", documented.Except(routes))}");

        // The API key: a scheme, required by every /api operation.
        var schemes = root.GetProperty("components").GetProperty("securitySchemes");
        var apiKey = schemes.GetProperty("ApiKey");
        Assert.Equal("apiKey", apiKey.GetProperty("type").GetString());
        Assert.Equal("header", apiKey.GetProperty("in").GetString());
        Assert.Equal("X-Api-Key", apiKey.GetProperty("name").GetString());
        Assert.Equal("bearer", schemes.GetProperty("Bearer").GetProperty("scheme").GetString());

        foreach (var path in root.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/api/", StringComparison.Ordinal)))
        {
            foreach (var operation in path.Value.EnumerateObject().Where(o => o.Value.ValueKind == JsonValueKind.Object && o.Value.TryGetProperty("responses", out _)))
            {
                var where = $"{operation.Name.ToUpperInvariant()} {path.Name}";
                Assert.True(operation.Value.TryGetProperty("security", out var security)
                    && security.EnumerateArray().Any(r => r.TryGetProperty("ApiKey", out _)), $"{where} has no ApiKey security requirement");

                // Problem answers: at least 401, 403 and 500 everywhere, 404 where the path names something; all problem+json.
                var responses = operation.Value.GetProperty("responses");
                var expected = new List<string> { "401", "403", "500" };
                if (path.Name.Contains('{', StringComparison.Ordinal))
                {
                    expected.Add("404");
                }

                foreach (var code in expected)
                {
                    Assert.True(responses.TryGetProperty(code, out var response), $"{where} does not declare {code}");
                    Assert.True(response.TryGetProperty("content", out var content) && content.TryGetProperty("application/problem+json", out _), $"{where} {code} is not application/problem+json");
                }

                foreach (var response in responses.EnumerateObject().Where(r => r.Name[0] is '4' or '5'))
                {
                    Assert.True(response.Value.GetProperty("content").TryGetProperty("application/problem+json", out _), $"{where} {response.Name} is not a problem");
                }
            }
        }

        // The model upload: raw bytes or a multipart form with a binary field 'file'.
        var upload = root.GetProperty("paths").GetProperty("/api/models/{name}/versions").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.Equal("binary", upload.GetProperty("application/octet-stream").GetProperty("schema").GetProperty("format").GetString());
        var form = upload.GetProperty("multipart/form-data").GetProperty("schema");
        Assert.Equal("binary", form.GetProperty("properties").GetProperty("file").GetProperty("format").GetString());
        Assert.Contains("file", form.GetProperty("required").EnumerateArray().Select(r => r.GetString()));

        // Integers are integers: no number that may also be a string, anywhere; a few known ones checked by name.
        var mixed = new List<string>();
        FindNumbersAsStrings(root, "$", mixed);
        Assert.True(mixed.Count == 0, "numbers typed as strings too: " + string.Join(", ", mixed));
        var jobStatus = root.GetProperty("components").GetProperty("schemas").GetProperty("JobStatus").GetProperty("properties");
        Assert.Equal("integer", jobStatus.GetProperty("totalRows").GetProperty("type").GetString());
        Assert.Equal("integer", jobStatus.GetProperty("modelVersion").GetProperty("type").GetString());
    }

    /// <summary>A route as OpenAPI writes its path: parameters without constraints, no trailing slash.</summary>
    private static string Template(RouteEndpoint endpoint)
    {
        var segments = endpoint.RoutePattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
        {
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart literal => literal.Content,
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart parameter => "{" + parameter.Name + "}",
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternSeparatorPart separator => separator.Content,
            _ => "?",
        })));
        return "/" + string.Join('/', segments);
    }

    private static void FindNumbersAsStrings(JsonElement element, string path, List<string> found)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            if (element.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.Array)
            {
                var types = type.EnumerateArray().Select(t => t.GetString()).ToList();
                if (types.Contains("string") && (types.Contains("integer") || types.Contains("number")))
                {
                    found.Add(path);
                }
            }

            foreach (var property in element.EnumerateObject())
            {
                FindNumbersAsStrings(property.Value, $"{path}.{property.Name}", found);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                FindNumbersAsStrings(item, $"{path}[{i++}]", found);
            }
        }
    }
}
