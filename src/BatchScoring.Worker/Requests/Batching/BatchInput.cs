using BatchScoring.Scoring.Batching;
using BatchScoring.Scoring.Data;
using BatchScoring.Worker.Requests.Intake;

namespace BatchScoring.Worker.Requests.Batching;

/// <summary>Builds one inference call's input from the request slices the batcher formed.</summary>
internal static class BatchInput
{
    /// <summary>The batch's input columns: row-major float requests gathered feature by feature, others concatenated.</summary>
    public static ColumnBatch Gather(IReadOnlyList<BatchSlice<PendingRequest>> slices, int totalRows, RequestRowConverter rows)
    {
        if (!rows.AllFloat32)
        {
            var parts = new ColumnBatch[slices.Count];
            for (var i = 0; i < slices.Count; i++)
            {
                var (request, start, count) = slices[i];
                parts[i] = start == 0 && count == request.RowCount ? request.Rows! : request.Rows!.Slice(start, count);
            }

            return ColumnBatch.Concat(parts);
        }

        var features = rows.Features;
        var width = features.Count;
        var keys = new string[totalRows];
        var values = new float[width][];
        var nulls = new bool[width][];
        for (var f = 0; f < width; f++)
        {
            values[f] = new float[totalRows];
        }

        var at = 0;
        foreach (var (request, start, count) in slices)
        {
            Array.Copy(request.Keys, start, keys, at, count);
            var source = request.Floats!;
            var sourceNulls = request.FloatNulls;
            for (var r = 0; r < count; r++)
            {
                var from = (start + r) * width;
                for (var f = 0; f < width; f++)
                {
                    values[f][at + r] = source[from + f];
                    if (sourceNulls is not null && sourceNulls[from + f])
                    {
                        (nulls[f] ??= new bool[totalRows])[at + r] = true;
                    }
                }
            }

            at += count;
        }

        var columns = new BatchColumn[width + 1];
        columns[0] = new BatchColumn(PendingRequest.KeyColumn, ColumnKind.String, keys);
        for (var f = 0; f < width; f++)
        {
            columns[f + 1] = new BatchColumn(features[f].Name, ColumnKind.Float32, values[f], nulls[f]);
        }

        return new ColumnBatch(columns);
    }
}
