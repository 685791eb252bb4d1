using BatchScoring.Data;

namespace BatchScoring.IntegrationTests.Data;

public sealed class ModelStoreTests(DataDatabase db) : IClassFixture<DataDatabase>
{
    private ModelStore Store => db.Models;

    [Fact]
    public async Task Models_resolve_by_version_alias_and_latest()
    {
        var ct = TestContext.Current.CancellationToken;
        var name = db.Server.UniqueName("model");
        for (var v = 1; v <= 3; v++)
        {
            await Store.UpsertModelVersionAsync(new ModelVersionEntity { ModelName = name, Version = v, Sha256 = $"sha{v}", StoragePath = $"models/{v}.onnx", Signature = """{"inputs":[]}""" }, ct);
        }

        Assert.Null(await Store.SetAliasAsync(name, "production", 2, ct));
        Assert.Equal(2, await Store.SetAliasAsync(name, "production", 1, ct));
        await Store.SetAliasAsync(name, "staging", 3, ct);

        Assert.Equal(3, (await Store.ResolveModelAsync(name, null, ct))!.Version);
        Assert.Equal(3, (await Store.ResolveModelAsync(name, "latest", ct))!.Version);
        Assert.Equal(2, (await Store.ResolveModelAsync(name, "2", ct))!.Version);
        Assert.Equal(1, (await Store.ResolveModelAsync(name, "production", ct))!.Version);
        Assert.Equal("models/3.onnx", (await Store.ResolveModelAsync(name, "staging", ct))!.StoragePath);
        Assert.Null(await Store.ResolveModelAsync(name, "9", ct));
        Assert.Null(await Store.ResolveModelAsync(name, "canary", ct));
        Assert.Null(await Store.ResolveModelAsync("no_such_model", null, ct));
        Assert.Equal(["production", "staging"], (await Store.ListAliasesAsync(name, ct)).Select(a => a.Alias));

        await Assert.ThrowsAsync<KeyNotFoundException>(() => Store.SetAliasAsync(name, "production", 42, ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.SetAliasAsync(name, "latest", 1, ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.SetAliasAsync(name, "7", 1, ct));
        Assert.True(await Store.DeleteAliasAsync(name, "staging", ct));

        var stored = await Store.GetModelVersionAsync(name, 2, ct);
        Assert.Equal(("sha2", "models/2.onnx"), (stored!.Sha256, stored.StoragePath));
        Assert.Contains("inputs", stored.Signature, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Next_model_versions_are_allocated_without_gaps_under_concurrency()
    {
        var ct = TestContext.Current.CancellationToken;
        var name = db.Server.UniqueName("next");

        var added = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => Task.Run(
            () => Store.AddNextModelVersionAsync(new ModelVersionEntity { ModelName = name, Sha256 = $"s{i}", StoragePath = $"p{i}" }, ct), ct)));

        Assert.Equal([1, 2, 3, 4, 5], added.Select(m => m.Version).Order());
        Assert.Equal([1, 2, 3, 4, 5], (await Store.ListModelVersionsAsync(name, ct)).Select(m => m.Version));
        Assert.Contains(name, await Store.ListModelNamesAsync(ct));
    }
}
