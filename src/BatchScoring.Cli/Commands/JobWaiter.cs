using System.Diagnostics;
using System.Globalization;
using BatchScoring.Cli.Errors;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// <c>--wait</c> of <c>jobs submit</c> and <c>jobs status</c>: long-polls the job (<c>GET /api/jobs/{id}?wait=</c>, answered
/// as soon as the job changes or ends) until it ends, rides out API outages (connection errors, timeouts, 5xx) with
/// capped backoff, and turns the outcome into the exit code.
/// </summary>
internal static class JobWaiter
{
    /// <summary>The longest single long poll; the service answers sooner when the job changes.</summary>
    public static readonly TimeSpan LongPoll = TimeSpan.FromSeconds(30);

    /// <summary>How long an answer may take beyond the long poll's own wait before the API counts as unresponsive.</summary>
    public static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Least time between two reads when an answer came back at once unchanged (a service without long polling).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a job may show nothing done before the wait asks the service whether any worker consumes its chunks.</summary>
    public static readonly TimeSpan StallHint = TimeSpan.FromSeconds(15);

    /// <summary>How long the API may stay unreachable or failing, in a row, before the wait gives up (exit 7).</summary>
    public static readonly RetryPolicy Outage = new(TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));

    public static async Task<int> WaitAsync(ApiClient api, JobDocument first, TimeSpan? timeout, bool json, CancellationToken cancellationToken)
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
                var hinted = false;
                while (true)
                {
                    var done = last.ScoredRows + last.FailedRows;
                    advance(done - reported);
                    reported = done;
                    if (IsFinished(last.State))
                    {
                        return;
                    }

                    if (!hinted && done == 0 && last.ChunksDone == 0 && elapsed.Elapsed >= StallHint)
                    {
                        hinted = true;
                        await HintWhenNoWorkerAsync(api, cancellationToken);
                    }

                    var remaining = Remaining();
                    if (timeout is not null && remaining <= TimeSpan.Zero)
                    {
                        timedOut = true;
                        return;
                    }

                    var wait = timeout is null || remaining > LongPoll ? LongPoll : remaining;
                    var path = $"api/jobs/{id}?wait={wait.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)}s"
                        + (last.UpdatedAt is { } seen ? $"&since={Uri.EscapeDataString(seen)}" : "");
                    var asked = Stopwatch.StartNew();
                    var result = await api.TrySendAsync(() => new HttpRequestMessage(HttpMethod.Get, path), ApiClient.ReadJob, cancellationToken, wait + AnswerTimeout);
                    if (result.Failure is not { } failure)
                    {
                        var previous = last;
                        last = result.Value!;
                        if (!IsFinished(last.State) && last.UpdatedAt == previous.UpdatedAt && asked.Elapsed < PollInterval)
                        {
                            // Answered at once with nothing new: this service does not long-poll; do not spin.
                            var pause = PollInterval - asked.Elapsed;
                            remaining = Remaining();
                            if (timeout is not null && remaining < pause)
                            {
                                pause = remaining;
                            }

                            if (pause > TimeSpan.Zero)
                            {
                                await Task.Delay(pause, cancellationToken);
                            }
                        }

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
            Console.WriteLine(last.ToJson());
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

    /// <summary>
    /// A job with nothing done for a while most often waits for a worker that is not there: say so once (on stderr, the
    /// wait goes on). Silent when the service cannot tell (an older service, RabbitMQ not answering).
    /// </summary>
    private static async Task HintWhenNoWorkerAsync(ApiClient api, CancellationToken cancellationToken)
    {
        var result = await api.TrySendAsync(() => new HttpRequestMessage(HttpMethod.Get, "api/service"), ReadChunkQueueAsync, cancellationToken, TimeSpan.FromSeconds(10));
        if (result is { Failure: null, Value: { Consumers: 0 } queue })
        {
            Console.Error.WriteLine(
                $"warning: no worker consumes {queue.Queue} ({queue.ReadyMessages:N0} chunk message{(queue.ReadyMessages == 1 ? "" : "s")} waiting): this job waits until one starts "
                + "(`batchscore serve --roles worker`).");
        }
    }

    private static async Task<(string Queue, long ReadyMessages, long Consumers)?> ReadChunkQueueAsync(HttpContent content, CancellationToken cancellationToken)
    {
        using var document = await System.Text.Json.JsonDocument.ParseAsync(await content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
        return document.RootElement.TryGetProperty("chunkQueue", out var queue) && queue.ValueKind == System.Text.Json.JsonValueKind.Object
            ? (queue.GetProperty("queue").GetString() ?? "score-chunks", queue.GetProperty("readyMessages").GetInt64(), queue.GetProperty("consumers").GetInt64())
            : null;
    }

    private static bool IsFinished(string state) => state is "succeeded" or "failed" or "cancelled";

    private static string FailureMessage(JobDocument status)
    {
        var reason = status.Error
            ?? (status.FailureSummary is [var top, ..] ? $"{status.FailedRows:N0} failed rows, e.g. {top.Reason}" : "no reason recorded");
        return $"{reason.TrimEnd('.')}. Details: `batchscore jobs status {status.Id}`.";
    }
}
