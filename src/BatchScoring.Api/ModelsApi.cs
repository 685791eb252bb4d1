using System.Security.Claims;
using BatchScoring.Application;
using BatchScoring.Contracts;
using BatchScoring.Data;
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
        api.MapPut("/{name}/aliases/{alias}", SetAlias).WithName(nameof(SetAlias)).WithSummary("Point an alias (e.g. production) at a version.")
            .RequireAuthorization(ApiScopes.Admin);
        api.MapGet("/{name}/aliases/{alias}/history", AliasHistory).WithName(nameof(AliasHistory)).WithSummary("Every move of an alias, newest first.")
            .RequireAuthorization(ApiScopes.Read);
        api.MapPost("/{name}/aliases/{alias}/rollback", RollbackAlias).WithName(nameof(RollbackAlias))
            .WithSummary("Undo the alias's last move: point it back at the version it had before.")
            .RequireAuthorization(ApiScopes.Admin);
        return api;
    }

    public sealed record SetAliasRequest(int Version);

    public static async Task<Ok<IReadOnlyList<ModelVersionInfo>>> ListModels(ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken)
    {
        var all = new List<ModelVersionInfo>();
        foreach (var name in await store.ListModelNamesAsync(user.Tenant(), cancellationToken))
        {
            all.AddRange(await ToInfoAsync(store, await store.ListModelVersionsAsync(name, cancellationToken), cancellationToken));
        }

        return TypedResults.Ok<IReadOnlyList<ModelVersionInfo>>(all);
    }

    public static async Task<Results<Ok<IReadOnlyList<ModelVersionInfo>>, ProblemHttpResult>> ListVersions(
        string name, ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken) =>
        await OwnVersionsAsync(name, user, store, cancellationToken) is { } versions
            ? TypedResults.Ok(await ToInfoAsync(store, versions, cancellationToken))
            : ModelNotFound(name);

    public static async Task<Results<Created<ModelVersionInfo>, ProblemHttpResult>> RegisterVersion(
        string name, HttpRequest request, ClaimsPrincipal user, ModelRegistry registry, CancellationToken cancellationToken)
    {
        // Invalid files and names taken by another tenant are thrown and become problems in ApiExceptionHandler.
        ModelVersionEntity version;
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(cancellationToken);
            var file = form.Files.GetFile("file") ?? form.Files.FirstOrDefault();
            if (file is null)
            {
                return ApiProblems.BadRequest("The multipart form has no file; send the ONNX file in a field named 'file'.", "Invalid model");
            }

            await using var stream = file.OpenReadStream();
            version = await registry.RegisterAsync(name, stream, user.Tenant(), cancellationToken);
        }
        else
        {
            version = await registry.RegisterAsync(name, request.Body, user.Tenant(), cancellationToken);
        }

        var info = new ModelVersionInfo(version.ModelName, version.Version, version.Sha256, [], version.CreatedAt, version.Signature);
        return TypedResults.Created($"/api/models/{name}/versions/{version.Version}", info);
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> SetAlias(
        string name, string alias, SetAliasRequest body, ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken)
    {
        if (await OwnVersionsAsync(name, user, store, cancellationToken) is not { } versions)
        {
            return ModelNotFound(name);
        }

        if (versions.FirstOrDefault(v => v.Version == body.Version) is not { } version)
        {
            return ApiProblems.NotFound($"Model '{name}' has no version {body.Version}.");
        }

        try
        {
            await store.SetAliasAsync(name, alias, body.Version, cancellationToken);
        }
        catch (ArgumentException ex)
        {
            return ApiProblems.BadRequest(ex.Message, "Invalid alias");
        }

        return TypedResults.Ok((await ToInfoAsync(store, [version], cancellationToken))[0]);
    }

    public static async Task<Results<Ok<IReadOnlyList<AliasChange>>, ProblemHttpResult>> AliasHistory(
        string name, string alias, int? limit, ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > JobsApi.MaxListLimit)
        {
            return ApiProblems.BadRequest($"Query parameter 'limit' must be between 1 and {JobsApi.MaxListLimit} (was {limit}).");
        }

        return await OwnVersionsAsync(name, user, store, cancellationToken) is null
            ? ModelNotFound(name)
            : TypedResults.Ok(await store.ListAliasHistoryAsync(name, alias, limit ?? 50, cancellationToken));
    }

    public static async Task<Results<Ok<ModelVersionInfo>, ProblemHttpResult>> RollbackAlias(
        string name, string alias, ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken)
    {
        if (await OwnVersionsAsync(name, user, store, cancellationToken) is null)
        {
            return ModelNotFound(name);
        }

        var last = await store.ListAliasHistoryAsync(name, alias, 1, cancellationToken);
        if (last.Count == 0)
        {
            return ApiProblems.NotFound($"Model '{name}' has no alias '{alias}'.");
        }

        if (last[0].PreviousVersion is not { } previous)
        {
            return ApiProblems.Conflict(
                $"Alias '{alias}' of model '{name}' has pointed at v{last[0].Version} since it was created; there is no earlier version to go back to.",
                "Nothing to roll back");
        }

        await store.SetAliasAsync(name, alias, previous, cancellationToken);
        var version = await store.GetModelVersionAsync(name, previous, cancellationToken);
        return TypedResults.Ok((await ToInfoAsync(store, [version!], cancellationToken))[0]);
    }

    /// <summary>The versions of a model the caller's tenant owns; null when there is none (another tenant's model looks absent).</summary>
    internal static async Task<IReadOnlyList<ModelVersionEntity>?> OwnVersionsAsync(string name, ClaimsPrincipal user, JobStore store, CancellationToken cancellationToken)
    {
        var versions = await store.ListModelVersionsAsync(name, cancellationToken);
        return versions.Count > 0 && versions.All(v => v.Tenant == user.Tenant()) ? versions : null;
    }

    internal static ProblemHttpResult ModelNotFound(string name) => ApiProblems.NotFound(ModelRegistry.NotFound(name, null));

    private static async Task<IReadOnlyList<ModelVersionInfo>> ToInfoAsync(JobStore store, IReadOnlyList<ModelVersionEntity> versions, CancellationToken cancellationToken)
    {
        var aliases = new List<ModelAliasEntity>();
        foreach (var name in versions.Select(v => v.ModelName).Distinct())
        {
            aliases.AddRange(await store.ListAliasesAsync(name, cancellationToken));
        }

        return versions.Select(v => new ModelVersionInfo(
            v.ModelName, v.Version, v.Sha256,
            aliases.Where(a => a.ModelName == v.ModelName && a.Version == v.Version).Select(a => a.Alias).ToArray(),
            v.CreatedAt, v.Signature)).ToArray();
    }
}
