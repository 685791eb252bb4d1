using Npgsql;
using NpgsqlTypes;

namespace BatchScoring.Data;

internal static class DbParameter
{
    /// <summary>A positional parameter of an explicit type; null becomes SQL NULL.</summary>
    public static NpgsqlParameter Of(object? value, NpgsqlDbType type) => new() { Value = value ?? DBNull.Value, NpgsqlDbType = type };
}
