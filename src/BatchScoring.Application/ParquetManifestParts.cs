using System.Security.Cryptography;
using Parquet;

namespace BatchScoring.Application;

/// <summary>One part file as <c>_SUCCESS</c> lists it: what a reader needs to check it arrived whole.</summary>
public sealed record ManifestPart(string File, long Rows, long Bytes, string Sha256);

/// <summary>Describes the part files of a finished job's Parquet folder for its <c>_SUCCESS</c> manifest.</summary>
public static class ParquetManifestParts
{
    /// <summary>
    /// Rows come from each file's footer, bytes and SHA-256 from its content: the manifest states what is on disk, so a
    /// copy can be checked against it without the database.
    /// </summary>
    public static async Task<IReadOnlyList<ManifestPart>> DescribeAsync(string folder, IEnumerable<string> fileNames, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fileNames);
        var parts = new List<ManifestPart>();
        foreach (var name in fileNames)
        {
            var path = Path.Combine(folder, name);
            long rows;
            await using (var reader = await ParquetReader.CreateAsync(path, cancellationToken: cancellationToken))
            {
                rows = reader.RowGroups.Sum(g => g.RowCount);
            }

            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            var hash = await SHA256.HashDataAsync(stream, cancellationToken);
            parts.Add(new ManifestPart(name, rows, stream.Length, Convert.ToHexStringLower(hash)));
        }

        return parts;
    }
}
