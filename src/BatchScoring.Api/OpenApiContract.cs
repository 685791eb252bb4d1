using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.OpenApi;

namespace BatchScoring.Api;

/// <summary>
/// Completes /openapi/v1.json with what the endpoints' metadata cannot say: the API-key security scheme on every /api
/// operation, the problem answers every route can give, the model upload body, and integers typed as integers.
/// </summary>
public static class OpenApiContract
{
    public const string ApiKeyScheme = "ApiKey";
    public const string BearerScheme = "Bearer";
    public const string ProblemSchema = "ProblemDetails";
    public const string ProblemContentType = "application/problem+json";

    public static void Configure(OpenApiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.AddSchemaTransformer((schema, _, _) =>
        {
            IntegersAsIntegers(schema);
            return Task.CompletedTask;
        });
        options.AddDocumentTransformer((document, _, _) =>
        {
            Complete(document);
            return Task.CompletedTask;
        });
    }

    /// <summary>
    /// The web serializer defaults read numbers from strings too, so the generator types them <c>["integer", "string"]</c>
    /// with a pattern; clients must send numbers, and the service always writes numbers.
    /// </summary>
    private static void IntegersAsIntegers(OpenApiSchema schema)
    {
        if (schema.Type is { } type && (type.HasFlag(JsonSchemaType.Integer) || type.HasFlag(JsonSchemaType.Number)))
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }
    }

    private static void Complete(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[ApiKeyScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = ApiKeyAuthenticationHandler.HeaderName,
            Description = "An API key with the scope the route needs (read, submit or admin); docs/http-api.md. Not needed when the service has no keys configured (local-only).",
        };
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "The same API key as `Authorization: Bearer <key>`.",
        };
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas.TryAdd(ProblemSchema, ProblemDetailsSchema());

        foreach (var (path, item) in document.Paths)
        {
            if (!path.StartsWith("/api/", StringComparison.Ordinal) || item.Operations is null)
            {
                continue;
            }

            foreach (var operation in item.Operations.Values)
            {
                operation.Security =
                [
                    new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, document)] = [] },
                    new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] },
                ];
                if (operation.OperationId == "RegisterVersion")
                {
                    operation.RequestBody = ModelUploadBody();
                }

                operation.Responses ??= [];
                var problems = new List<int> { StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden, StatusCodes.Status500InternalServerError };
                if (path.Contains('{', StringComparison.Ordinal))
                {
                    problems.Add(StatusCodes.Status404NotFound);
                }

                if (operation.Parameters is { Count: > 0 } || operation.RequestBody is not null)
                {
                    problems.Add(StatusCodes.Status400BadRequest);
                }

                if (operation.RequestBody is not null)
                {
                    problems.Add(StatusCodes.Status413PayloadTooLarge);
                    if (operation.OperationId != "RegisterVersion")
                    {
                        problems.Add(StatusCodes.Status415UnsupportedMediaType);
                    }
                }

                foreach (var status in problems)
                {
                    var code = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    if (!operation.Responses.ContainsKey(code))
                    {
                        operation.Responses[code] = new OpenApiResponse
                        {
                            Description = ReasonPhrases.GetReasonPhrase(status),
                            Content = new Dictionary<string, OpenApiMediaType>
                            {
                                [ProblemContentType] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
                            },
                        };
                    }
                }

            }
        }
    }

    private static OpenApiRequestBody ModelUploadBody()
    {
        var file = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The ONNX file." };
        return new OpenApiRequestBody
        {
            Required = true,
            Description = "The ONNX file, as the raw body or as the multipart field `file`. At most BatchScoring:Api:MaxModelBytes (1 GiB).",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/octet-stream"] = new() { Schema = file },
                ["multipart/form-data"] = new()
                {
                    Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = new Dictionary<string, IOpenApiSchema> { ["file"] = file },
                        Required = new HashSet<string> { "file" },
                    },
                },
            },
        };
    }

    /// <summary>schemas/problem-details.schema.json in OpenAPI form, for a document where no endpoint declared it.</summary>
    private static OpenApiSchema ProblemDetailsSchema() => new()
    {
        Type = JsonSchemaType.Object,
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String },
        },
    };
}
