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
        var api = app.MapGroup("/api/models").WithTags("Models");
        api.MapGet("/", ListModels).WithName(nameof(ListModels)).WithSummary("Registered model versions.");
        api.MapGet("/{name}/versions", ListVersions).WithName(nameof(ListVersions));
        api.MapPost("/{name}/versions", RegisterVersion).WithName(nameof(RegisterVersion))
            .WithSummary("Upload an ONNX file (raw body or multipart field 'file') as the next version.")
            .DisableAntiforgery();
        api.MapPut("/{name}/aliases/{alias}", SetAlias).WithName(nameof(SetAlias)).WithSummary("Point an alias (e.g. production) at a version.");
        api.MapGet("/{name}/aliases/{alias}/history", AliasHistory).WithName(nameof(AliasHistory)).WithSummary("Every move of an alias, newest first.");
        api.MapPost("/{name}/aliases/{alias}/rollback", RollbackAlias).WithName(nameof(RollbackAlias))
            .WithSummary("Undo the alias's last move: point it back at the version it had before.");
        return api;
    }

    public sealed record SetAliasRequest(int Version);

    public static async Task<Ok<IReadOnlyList<ModelVersionInfo>>> ListModels(JobStore store, CancellationToken cancellationToken)
    {
        var all = new List<ModelVersionInfo>();
        foreach (var name in await store.ListModelNamesAsync(cancellationToken))
        {
            all.AddRange(await ToInfoAsync(store, await store.ListModelVersionsAsync(name, cancellationToken), cancellationToken));
        }

        return TypedResults.Ok<IReadOnlyList<ModelVersionInfo>>(all);
    }

    public static async Task<Results<Ok<IReadOnlyList<ModelVersionInfo>>, NotFound>> ListVersions(string name, JobStore store, CancellationToken cancellationToken)
    {
        var versions = await store.ListModelVersionsAsync(name, cancellationToken);
        return versions.Count == 0 ? TypedResults.NotFound() : TypedResults.Ok(await ToInfoAsync(store, versions, cancellationToken));
    }

    public static async Task<Results<Created<ModelVersionInfo>, ProblemHttpResult>> RegisterVersion(
        string name, HttpRequest request, ModelRegistry registry, CancellationToken cancellationToken)
    {
        try
        {
            ModelVersionEntity version;
            if (request.HasFormContentType)
            {
                var form = await request.ReadFormAsync(cancellationToken);
                var file = form.Files.GetFile("file") ?? form.Files.FirstOrDefault();
                if (file is null)
                {
                    return TypedResults.Problem("The multipart form has no file; send the ONNX file in a field named 'file'.", statusCode: 400);
                }

                await using var stream = file.OpenReadStream();
                version = await registry.RegisterAsync(name, stream, cancellationToken);
            }
            else
            {
                version = await registry.RegisterAsync(name, request.Body, cancellationToken);
            }

            var info = new ModelVersionInfo(version.ModelName, version.Version, version.Sha256, [], version.CreatedAt, version.Signature);
            return TypedResults.Created($"/api/models/{name}/versions/{version.Version}", info);
        }
        catch (ModelRegistrationException ex)
        {
            return TypedResults.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "Invalid model");
        }
    }

    public static async Task<Results<Ok<ModelVersionInfo>, NotFound<string>>> SetAlias(
        string name, string alias, SetAliasRequest body, JobStore store, CancellationToken cancellationToken)
    {
        var version = await store.GetModelVersionAsync(name, body.Version, cancellationToken);
        if (version is null)
        {
            return TypedResults.NotFound($"Model '{name}' has no version {body.Version}.");
        }

        await store.SetAliasAsync(name, alias, body.Version, cancellationToken);
        var info = (await ToInfoAsync(store, [version], cancellationToken))[0];
        return TypedResults.Ok(info);
    }

    public static async Task<Ok<IReadOnlyList<AliasChange>>> AliasHistory(string name, string alias, int? limit, JobStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.ListAliasHistoryAsync(name, alias, Math.Clamp(limit ?? 50, 1, 1000), cancellationToken));

    public static async Task<Results<Ok<ModelVersionInfo>, NotFound<string>, Conflict<string>>> RollbackAlias(
        string name, string alias, JobStore store, CancellationToken cancellationToken)
    {
        var last = await store.ListAliasHistoryAsync(name, alias, 1, cancellationToken);
        if (last.Count == 0)
        {
            return TypedResults.NotFound($"Model '{name}' has no alias '{alias}'.");
        }

        if (last[0].PreviousVersion is not { } previous)
        {
            return TypedResults.Conflict($"Alias '{alias}' of model '{name}' has pointed at v{last[0].Version} since it was created; there is no earlier version to go back to.");
        }

        await store.SetAliasAsync(name, alias, previous, cancellationToken);
        var version = await store.GetModelVersionAsync(name, previous, cancellationToken);
        return TypedResults.Ok((await ToInfoAsync(store, [version!], cancellationToken))[0]);
    }

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
