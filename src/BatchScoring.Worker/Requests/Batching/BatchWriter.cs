using System.Diagnostics;
using BatchScoring.Application;
using BatchScoring.Data;
using BatchScoring.Scoring.Batching;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.Onnx;
using Npgsql;

namespace BatchScoring.Worker.Requests.Batching;

/// <summary>
/// Hands a scored batch's rows back to the requests they came from and writes them in one transaction: outputs to the
/// model version's results table, row failures to the failed-rows table.
/// </summary>
internal sealed class BatchWriter(ModelVersionEntity version, ResultTable table, NpgsqlDataSource dataSource)
{
    public async Task WriteAsync(IReadOnlyList<BatchSlice<PendingRequest>> slices, ColumnBatch input, ScoreResult result, CancellationToken cancellationToken)
    {
        // Batch row → (slice, row within the request).
        var sliceStart = new int[slices.Count + 1];
        for (var i = 0; i < slices.Count; i++)
        {
            sliceStart[i + 1] = sliceStart[i] + slices[i].Count;
        }

        var scored = result.ScoredRows;
        var requestIds = new string[scored.Length];
        var slice = 0;
        for (var i = 0; i < scored.Length; i++)
        {
            while (scored[i] >= sliceStart[slice + 1])
            {
                slice++;
            }

            var (request, start, _) = slices[slice];
            requestIds[i] = request.Request.RequestId;
            request.SetScored(start + scored[i] - sliceStart[slice], result.Outputs, i);
        }

        var failedRows = new List<FailedRow>(result.Failures.Count);
        foreach (var failure in result.Failures)
        {
            var s = Array.BinarySearch(sliceStart, 0, slices.Count, failure.Row);
            s = s >= 0 ? s : ~s - 1;

            var (request, start, _) = slices[s];
            var row = start + failure.Row - sliceStart[s];
            request.SetFailed(row, failure);
            failedRows.Add(new FailedRow(null, request.Request.RequestId, null, row, request.Keys[row], failure.Column, failure.Reason) { KeyValue = request.Keys[row] });
        }

        if (scored.Length > 0 || failedRows.Count > 0)
        {
            var keyColumn = input[PendingRequest.KeyColumn];
            var outputColumns = new List<BatchColumn>(result.Outputs.Columns.Count + 1)
            {
                scored.Length == input.RowCount ? keyColumn : keyColumn.Take(scored),
            };
            outputColumns.AddRange(result.Outputs.Columns);
            var watch = Stopwatch.StartNew();
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            if (scored.Length > 0)
            {
                await table.CopyRequestRowsAsync(
                    connection, requestIds, version.ModelName, version.Version, DateTimeOffset.UtcNow, new ColumnBatch(outputColumns), cancellationToken);
            }

            await FailedRowWriter.WriteAsync(connection, failedRows, cancellationToken);
            await tx.CommitAsync(cancellationToken);
            ScoringMetrics.CopySeconds.Record(watch.Elapsed.TotalSeconds);
        }

        ScoringMetrics.RowsScored.Add(scored.Length, ScoringMetrics.ModelTags(version.ModelName, "request"));
        ScoringMetrics.RowsFailed.Add(failedRows.Count, ScoringMetrics.ModelTags(version.ModelName, "request"));
        ServingMetrics.RowsOfVersion(version.ModelName, version.Version, scored.Length, failedRows.Count);
    }
}
