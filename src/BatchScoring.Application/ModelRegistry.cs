using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using BatchScoring.Data;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application;

/// <summary>
/// Named models with integer versions. Files are stored content-addressed (<c>{store}/{sha256}.onnx</c>), so
/// registering the same bytes twice stores them once; the signature is read from the file at registration.
/// </summary>
public sealed partial class ModelRegistry(JobStore store, IOptions<BatchScoringOptions> options, ILogger<ModelRegistry> logger)
{
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>Why <c>JobStore.ResolveModelAsync(name, versionOrAlias)</c> found nothing, in the words every caller reports.</summary>
    public static string NotFound(string name, string? versionOrAlias) => versionOrAlias is null
        ? $"Model '{name}' is not registered."
        : $"Model '{name}' has no version or alias '{versionOrAlias}'.";

    public Task<ModelVersionEntity> RegisterAsync(string name, Stream content, CancellationToken cancellationToken) =>
        RegisterAsync(name, content, Tenants.Default, cancellationToken);

    /// <summary>Stores the file and registers it as the next version of <paramref name="name"/>, a name owned by <paramref name="tenant"/>.</summary>
    public async Task<ModelVersionEntity> RegisterAsync(string name, Stream content, string tenant, CancellationToken cancellationToken)
    {
        if (!IsValidName(name))
        {
            throw new ModelRegistrationException($"Model name '{name}' is invalid: use 1-63 lower-case letters, digits, '_' or '-', starting with a letter.");
        }

        string storeDir;
        try
        {
            storeDir = options.Value.GetStorageRoots().Confine(options.Value.ModelStorePath, $"{BatchScoringOptions.SectionName}:{nameof(BatchScoringOptions.ModelStorePath)}");
        }
        catch (PathNotAllowedException ex)
        {
            throw new ModelRegistrationException($"Models cannot be stored: {ex.Message}", ex);
        }

        Directory.CreateDirectory(storeDir);
        var tempPath = Path.Combine(storeDir, $".upload-{Guid.NewGuid():N}.tmp");
        try
        {
            string sha256;
            await using (var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            if (new FileInfo(tempPath).Length == 0)
            {
                throw new ModelRegistrationException($"The file uploaded for model '{name}' is empty.");
            }

            ModelSignature signature;
            try
            {
                using var model = ScoringModel.Load(tempPath, new ScoringSessionOptions { PreferCuda = false, IntraOpThreads = 1 }, null, sha256);
                signature = model.Signature;
            }
            catch (ModelLoadException ex)
            {
                // The temporary path is the model store's: not for the client.
                var reason = ex.Message.Replace($"Model file '{tempPath}'", "The file", StringComparison.Ordinal).Replace(tempPath, "the file", StringComparison.Ordinal);
                throw new ModelRegistrationException($"The file uploaded for model '{name}' is not a loadable ONNX model: {reason}", ex);
            }

            var finalPath = Path.Combine(storeDir, $"{sha256}.onnx");
            if (File.Exists(finalPath))
            {
                File.Delete(tempPath);
            }
            else
            {
                File.Move(tempPath, finalPath);
            }

            var version = await store.AddNextModelVersionAsync(
                new ModelVersionEntity { ModelName = name, Tenant = tenant, Sha256 = sha256, StoragePath = finalPath, Signature = JsonSerializer.Serialize(signature) },
                cancellationToken);
            logger.LogInformation("Registered model {Model} v{Version} ({Sha256})", name, version.Version, sha256);
            return version;
        }
        finally
        {
            if (File.Exists(tempPath))
            {
                File.Delete(tempPath);
            }
        }
    }

    [GeneratedRegex("^[a-z][a-z0-9_-]{0,62}$")]
    private static partial Regex NamePattern();
}

public sealed class ModelRegistrationException(string message, Exception? inner = null) : Exception(message, inner);
