using System.Diagnostics;
using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// <c>--wait</c> of <c>jobs submit</c> and <c>jobs status</c>: polls the job until it ends, rides out API outages
/// (connection errors, timeouts, 5xx) with capped backoff, and turns the outcome into the exit code.
/// </summary>
internal static class JobWaiter
{
    /// <summary>Short, so the command returns right after the job ends; one small indexed query per poll.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long the API may stay unreachable or failing, in a row, before the wait gives up (exit 7).</summary>
    public static readonly RetryPolicy Outage = new(TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));

    public static async Task<int> WaitAsync(ApiClient api, JobStatus first, TimeSpan? timeout, bool json, CancellationToken cancellationToken)
    {
        var id = first.Id;
        var follow = $"`batchscore jobs status {id} --wait`";
        var elapsed = Stopwatch.StartNew();
        TimeSpan Remaining() => timeout is { } t ? t - elapsed.Elapsed : Timeout.InfiniteTimeSpan;
        var last = first;
        var timedOut = false;
        try
        {
            await CliProgress.RunAsync($"Job {id.ToString()[..8]}", first.TotalRows, async advance =>
            {
                long reported = 0;
                var outage = Outage.Start();
                var warned = false;
                while (true)
                {
                    var done = last.ScoredRows + last.FailedRows;
                    advance(done - reported);
                    reported = done;
                    if (IsFinished(last.State))
                    {
                        return;
                    }

                    var remaining = Remaining();
                    if (timeout is not null && remaining <= TimeSpan.Zero)
                    {
                        timedOut = true;
                        return;
                    }

                    await Task.Delay(timeout is null || remaining > PollInterval ? PollInterval : remaining, cancellationToken);
                    var result = await api.TrySendAsync<JobStatus>(() => new HttpRequestMessage(HttpMethod.Get, $"api/jobs/{id}"), cancellationToken);
                    if (result.Failure is not { } failure)
                    {
                        last = result.Value!;
                        outage.Reset();
                        warned = false;
                        continue;
                    }

                    if (!failure.Transient)
                    {
                        throw new CliException(failure.ExitCode, failure.Message);
                    }

                    if (!warned)
                    {
                        Console.Error.WriteLine(SecretRedactor.Current.Redact($"warning: {failure.Message}; retrying"));
                        warned = true;
                    }

                    remaining = Remaining();
                    if (!await outage.WaitAsync(cancellationToken, timeout is null ? null : remaining))
                    {
                        if (timeout is not null && Remaining() <= Outage.MaxDelay)
                        {
                            timedOut = true;
                            return;
                        }

                        throw new CliException(ExitCodes.Unreachable,
                            $"{failure.Message} Gave up after {outage.Elapsed.TotalSeconds:N0} s; job {id} was {last.State} and may still be running: follow it with {follow}.");
                    }
                }
            });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Interrupted, $"interrupted; job {id} keeps running: follow it with {follow}, or stop it with `batchscore jobs cancel {id}`.");
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(last, ApiClient.Json));
        }
        else if (!timedOut)
        {
            Console.WriteLine(JobsCommand.Describe(last));
        }

        if (timedOut)
        {
            return ErrorReporter.Print(ExitCodes.TimedOut,
                $"timed out after {timeout!.Value.TotalSeconds:N0} s: job {id} is still {last.State} ({last.ChunksDone}/{last.ChunksTotal} chunks done); it keeps running. "
                + $"Follow it with {follow}, or stop it with `batchscore jobs cancel {id}`.");
        }

        return last.State switch
        {
            "succeeded" => ExitCodes.Succeeded,
            "cancelled" => ErrorReporter.Print(ExitCodes.Cancelled, $"job {id} was cancelled; `batchscore jobs retry {id}` runs what is left."),
            _ => ErrorReporter.Print(ExitCodes.Failed, $"job {id} failed: {FailureMessage(last)}"),
        };
    }

    private static bool IsFinished(string state) => state is "succeeded" or "failed" or "cancelled";

    private static string FailureMessage(JobStatus status)
    {
        var reason = status.Error
            ?? (status.FailureSummary.Count > 0 ? $"{status.FailedRows:N0} failed rows, e.g. {status.FailureSummary[0].Reason}" : "no reason recorded");
        return $"{reason.TrimEnd('.')}. Details: `batchscore jobs status {status.Id}`.";
    }
}
