using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace BatchScoring.Api;

public static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/models").WithTags("Models").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        api.MapGet("/", ListModels).WithName(nameof(ListModels)).WithSummary("Registered model versions.").RequireAuthorization(ApiScopes.Read);
        api.MapGet("/{name}/versions", ListVersions).WithName(nameof(ListVersions)).RequireAuthorization(ApiScopes.Read);
        api.MapPost("/{name}/versions", RegisterVersion).WithName(nameof(RegisterVersion))
            .WithSummary("Upload an ONNX file (raw body or multipart field 'file') as the next version.")
            .RequireAuthorization(ApiScopes.Admin)
            .WithMetadata(new ModelUploadEndpoint())
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .DisableAntiforgery();
        api.MapPut("/{name}/aliases/{alias}", SetAlias).WithName(nameof(SetAlias))
            .WithSummary("Point an alias (e.g. production) at a version; 409 with the signature diff when it is incompatible with the current target (unless force); with canaryVersion and canaryPercent, send that share of score request rows to a canary version.")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapGet("/{name}/aliases/{alias}/history", AliasHistory).WithName(nameof(AliasHistory)).WithSummary("Every move of an alias, newest first.")
            .RequireAuthorization(ApiScopes.Read);
        api.MapPost("/{name}/aliases/{alias}/rollback", RollbackAlias).WithName(nameof(RollbackAlias))
            .WithSummary("Undo the alias's last move: point it back at the version it had before (same signature check as a move).")
            .RequireAuthorization(ApiScopes.Admin).ProducesProblem(StatusCodes.Status409Conflict);
        api.MapModelLifecycleApi();
        return api;
    }

    /// <param name="Version">The version the alias points at after the move.</param>
    /// <param name="Force">Move even when the version's signature is incompatible with the current target's (recorded in the history).</param>
    /// <param name="CanaryVersion">With <paramref name="CanaryPercent"/>: a canary version that gets that share of score request rows; absent: a plain move, which ends a running canary.</param>
    /// <param name="CanaryPercent">1 to 99.</param>
    public sealed record SetAliasRequest(int Version, bool Force = false, int? CanaryVersion = null, int? CanaryPercent = null);

    /// <param name="Force">Roll back even when the earlier version's signature is incompatible with the current one's.</param>
    public sealed record RollbackAliasRequest(bool Force = false);

    public static async Task<Ok<IReadOnlyList<ModelVersionInfo>>> ListModels(ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken) =>
        TypedResults.Ok(await registry.ListAsync(user.Tenant(), cancellationToken));

    public static async Task<Results<Ok<IReadOnlyList<ModelVersionInfo>>, ProblemHttpResult>> ListVersions(
        string name, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken) =>
        await registry.ListVersionsAsync(name, user.Tenant(), cancellationToken) is { } versions ? TypedResults.Ok(versions) : ModelNotFound(name);

    public static async Task<Results<Created<ModelRegistration>, Ok<ModelRegistration>, ProblemHttpResult>> RegisterVersion(
        string name, HttpRequest request, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        // Invalid files and names taken by another tenant are thrown and become problems in ApiExceptionHandler.
        ModelRegistration info;
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(cancellationToken);
            var file = form.Files.GetFile("file") ?? form.Files.FirstOrDefault();
            if (file is null)
            {
                return ApiProblems.BadRequest("The multipart form has no file; send the ONNX file in a field named 'file'.", "Invalid model");
            }

            await using var stream = file.OpenReadStream();
            info = await registry.RegisterAsync(name, stream, user.Tenant(), cancellationToken);
        }
        else
        {
            info = await registry.RegisterAsync(name, request.Body, user.Tenant(), cancellationToken);
        }

        // The same bytes again: the existing version, 200 instead of 201.
        return info.Existing ? TypedResults.Ok(info) : TypedResults.Created($"/api/models/{name}/versions/{info.Version}", info);
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> SetAlias(
        string name, string alias, SetAliasRequest body, ClaimsPrincipal user, ModelRegistry registry, CanaryAliases canaries, CancellationToken cancellationToken)
    {
        try
        {
            if (body.CanaryVersion is not null || body.CanaryPercent is not null)
            {
                return await CanaryApi.SetCanaryAsync(name, alias, body, user, registry, canaries, cancellationToken);
            }

            return TypedResults.Ok(await registry.SetAliasAsync(name, alias, body.Version, user.Tenant(), cancellationToken, body.Force, user.Identity?.Name));
        }
        catch (IncompatibleSignatureException ex)
        {
            return ModelLifecycleApi.Incompatible(ex);
        }
        catch (ModelNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
        catch (ArgumentException ex)
        {
            return ApiProblems.BadRequest(ex.Message, "Invalid alias");
        }
    }

    public static async Task<Results<Ok<IReadOnlyList<ModelAliasChange>>, ProblemHttpResult>> AliasHistory(
        string name, string alias, int? limit, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > JobsApi.MaxListLimit)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and {JobsApi.MaxListLimit} (was {limit}).");
        }

        return await registry.AliasHistoryAsync(name, alias, limit ?? 50, user.Tenant(), cancellationToken) is { } changes
            ? TypedResults.Ok(changes)
            : ModelNotFound(name);
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> RollbackAlias(
        string name, string alias, RollbackAliasRequest? body, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Ok(await registry.RollbackAliasAsync(name, alias, user.Tenant(), cancellationToken, body?.Force ?? false, user.Identity?.Name));
        }
        catch (IncompatibleSignatureException ex)
        {
            return ModelLifecycleApi.Incompatible(ex);
        }
        catch (ModelNotFoundException ex)
        {
            return ApiProblems.NotFound(ex.Message);
        }
        catch (AliasRollbackRefusedException ex)
        {
            return ApiProblems.Conflict(ex.Message, "Nothing to roll back");
        }
    }

    internal static ProblemHttpResult ModelNotFound(string name) => ApiProblems.NotFound(ModelRegistry.NotFound(name, null));
}
