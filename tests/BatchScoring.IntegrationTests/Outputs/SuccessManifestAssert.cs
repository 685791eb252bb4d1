using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet.Serialization;

namespace BatchScoring.IntegrationTests.Outputs;

/// <summary>
/// Checks a Parquet folder's <c>_SUCCESS</c> against the files themselves, recomputed here without the service's code:
/// every part file listed once, each part's SHA-256 and size from its bytes, its rows counted by reading a column.
/// </summary>
public static class SuccessManifestAssert
{
    /// <summary>Returns the manifest's total rows (the sum of its parts) after checking every part.</summary>
    public static async Task<long> VerifyAsync(string folder, Guid jobId, string model, int version, string sha256, CancellationToken ct)
    {
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "_SUCCESS"), ct));
        var root = manifest.RootElement;
        Assert.Equal(jobId, root.GetProperty("jobId").GetGuid());
        Assert.Equal(model, root.GetProperty("model").GetString());
        Assert.Equal(version, root.GetProperty("modelVersion").GetInt32());
        Assert.Equal(sha256, root.GetProperty("modelSha256").GetString());

        var listed = root.GetProperty("parts").EnumerateArray().ToArray();
        Assert.Equal(
            Directory.GetFiles(folder, "part-*.parquet").Select(Path.GetFileName).Order(StringComparer.Ordinal),
            listed.Select(p => p.GetProperty("file").GetString()).Order(StringComparer.Ordinal));
        long total = 0;
        foreach (var part in listed)
        {
            var path = Path.Combine(folder, part.GetProperty("file").GetString()!);
            var bytes = await File.ReadAllBytesAsync(path, ct);
            Assert.Equal(bytes.LongLength, part.GetProperty("bytes").GetInt64());
            var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
            Assert.True(actual == part.GetProperty("sha256").GetString(), $"{path}: SHA-256 {actual}, _SUCCESS says {part.GetProperty("sha256").GetString()}");
            var rows = await CountRowsByReadingAsync(path, version, ct);
            Assert.Equal(rows, part.GetProperty("rows").GetInt64());
            total += rows;
        }

        return total;
    }

    /// <summary>Rows as the values of <c>model_version</c> actually read (each must be the job's version), not the footer's row counts.</summary>
    private static async Task<long> CountRowsByReadingAsync(string path, int version, CancellationToken ct)
    {
        var rows = (await ParquetSerializer.DeserializeAsync<VersionRow>(path, cancellationToken: ct)).Data;
        Assert.All(rows, r => Assert.Equal(version, r.ModelVersion));
        return rows.Count;
    }

    private sealed class VersionRow
    {
        [JsonPropertyName("model_version")]
        public int ModelVersion { get; set; }
    }
}
