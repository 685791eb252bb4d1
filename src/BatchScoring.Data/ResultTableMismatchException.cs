namespace BatchScoring.Data;

/// <summary>
/// An existing result table does not fit the columns a job needs: a column is missing, has an
/// incompatible type, or an extra column is NOT NULL without a default (so COPY could not fill it).
/// </summary>
public sealed class ResultTableMismatchException : Exception
{
    public ResultTableMismatchException(string table, string column, string expected, string? actual)
        : base($"Result table {table} does not match: column \"{column}\" should be {expected} but is {actual ?? "missing"}.")
    {
        Table = table;
        Column = column;
        Expected = expected;
        Actual = actual;
    }

    public ResultTableMismatchException()
        : this("?", "?", "?", null)
    {
    }

    public ResultTableMismatchException(string message)
        : base(message)
    {
        Table = Column = Expected = "?";
    }

    public ResultTableMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
        Table = Column = Expected = "?";
    }

    /// <summary>Qualified table name, <c>schema.table</c>.</summary>
    public string Table { get; }

    public string Column { get; }

    /// <summary>Expected PostgreSQL type (or constraint).</summary>
    public string Expected { get; }

    /// <summary>Actual PostgreSQL type; null when the column is missing.</summary>
    public string? Actual { get; }
}
