using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using BatchScoring.Contracts;
using BatchScoring.Data;

namespace BatchScoring.Worker.Requests.Canary;

/// <summary>Where a request's model reference leads: one version, or a main version and a canary with its share of rows.</summary>
internal sealed record ModelRoute(ModelVersionEntity Main, ModelVersionEntity? Canary, int CanaryPercent);

/// <summary>
/// Splits a request's rows between an alias's main and canary versions by a stable hash of the row key, so a key meets
/// the same version whatever request carries it, on every worker, across restarts; a row with an empty key is routed
/// by the request id. Bucket = first 8 bytes (big-endian) of SHA-256(UTF-8 of model name, '\n', key) mod 10 000; the
/// canary takes buckets below percent × 100, so raising the percent keeps the keys the canary already had.
/// </summary>
internal static class CanaryRouter
{
    public const int Buckets = 10_000;

    public static int Bucket(string model, string key)
    {
        var length = Encoding.UTF8.GetByteCount(model) + 1 + Encoding.UTF8.GetByteCount(key);
        var rented = length > 256 ? ArrayPool<byte>.Shared.Rent(length) : null;
        try
        {
            Span<byte> bytes = rented is null ? stackalloc byte[256] : rented;
            var at = Encoding.UTF8.GetBytes(model, bytes);
            bytes[at++] = (byte)'\n';
            at += Encoding.UTF8.GetBytes(key, bytes[at..]);
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(bytes[..at], hash);
            return (int)(BinaryPrimitives.ReadUInt64BigEndian(hash) % Buckets);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public static bool ToCanary(string model, string routingKey, int percent) => Bucket(model, routingKey) < percent * (Buckets / 100);

    /// <summary>The key a row is routed by: its key, or the request id when the key is empty.</summary>
    public static string RoutingKey(ScoreRequest request, ScoreRequestRow row) => row.Key.Length > 0 ? row.Key : request.RequestId;

    /// <summary>The request's rows for the main version and for the canary, each in request order.</summary>
    public static (List<ScoreRequestRow> Main, List<ScoreRequestRow> Canary) Split(ScoreRequest request, string model, int percent)
    {
        var main = new List<ScoreRequestRow>(request.Rows.Count);
        var canary = new List<ScoreRequestRow>();
        foreach (var row in request.Rows)
        {
            (ToCanary(model, RoutingKey(request, row), percent) ? canary : main).Add(row);
        }

        return (main, canary);
    }
}
