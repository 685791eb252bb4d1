using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// HTTP client for the status API (--api / BATCHSCORING_API, --api-key / BATCHSCORING_API_KEY). Failures become a
/// <see cref="CliException"/> with one line (the problem details' title and detail) and the documented exit code;
/// transient failures (connection errors, timeouts, 5xx, 429) of requests that are safe to repeat are retried with
/// capped exponential backoff first.
/// </summary>
internal sealed class ApiClient(HttpClient http) : IDisposable
{
    public const string DefaultApi = "http://127.0.0.1:5080";
    public const string ApiVariable = "BATCHSCORING_API";
    public const string KeyVariable = "BATCHSCORING_API_KEY";

    /// <summary>How long one command keeps retrying a transient failure.</summary>
    public static readonly RetryPolicy CommandRetry = new(TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(2));

    /// <summary>How long a single attempt may take before it counts as a transient failure (uploads excepted).</summary>
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Also what `--json` prints: every property, null ones as null, as the API writes them (schemas/README.md).</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        TypeInfoResolver = JsonTypeInfoResolver.Combine(CliJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };

    // No DefaultValueFactory: help would print the environment's value, and the key is a secret.
    public static Option<string?> ApiOption { get; } = new("--api")
    {
        Description = $"Status API address (env {ApiVariable}; default {DefaultApi}).",
        Recursive = true,
    };

    public static Option<string?> KeyOption { get; } = new("--api-key")
    {
        Description = $"API key (env {KeyVariable}). Prefer the environment: arguments are visible to other users of the machine.",
        Recursive = true,
    };

    public static ApiClient From(ParseResult parse)
    {
        var address = parse.GetValue(ApiOption) ?? Environment.GetEnvironmentVariable(ApiVariable) ?? DefaultApi;
        if (!Uri.TryCreate(address.TrimEnd('/') + "/", UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"--api must be an http(s) address such as {DefaultApi}.");
        }

        // Uploads of large models may take minutes: each attempt has its own shorter timeout where it matters.
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        if ((parse.GetValue(KeyOption) ?? Environment.GetEnvironmentVariable(KeyVariable)) is { Length: > 0 } key)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", key);
        }

        return new ApiClient(client);
    }

    public Uri BaseAddress => http.BaseAddress!;

    public Task<T> GetAsync<T>(string path, CancellationToken cancellationToken) =>
        SendAsync<T>(() => new HttpRequestMessage(HttpMethod.Get, path), idempotent: true, cancellationToken);

    public Task<T> PostJsonAsync<T>(string path, object body, CancellationToken cancellationToken, bool idempotent = false) =>
        SendAsync<T>(() => new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: Json) }, idempotent, cancellationToken);

    public Task<T> PutJsonAsync<T>(string path, object body, CancellationToken cancellationToken) =>
        SendAsync<T>(() => new HttpRequestMessage(HttpMethod.Put, path) { Content = JsonContent.Create(body, options: Json) }, idempotent: true, cancellationToken);

    public Task<T> PostFileAsync<T>(string path, string file, CancellationToken cancellationToken) =>
        SendAsync<T>(
            () =>
            {
                var content = new StreamContent(File.OpenRead(file));
                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                return new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
            },
            idempotent: false,
            cancellationToken,
            attemptTimeout: Timeout.InfiniteTimeSpan);

    /// <summary>Reads a job status answer as a document (the job path avoids the object serializer: ADR-011).</summary>
    public static readonly Func<HttpContent, CancellationToken, Task<JobDocument?>> ReadJob = async (content, token) => await JobDocument.ReadAsync(content, token);

    public Task<JobDocument> GetJobAsync(string path, CancellationToken cancellationToken) =>
        SendAsync(() => new HttpRequestMessage(HttpMethod.Get, path), ReadJob, idempotent: true, cancellationToken);

    /// <summary>POST /api/jobs; safe to repeat because the request carries an idempotency key.</summary>
    public Task<JobDocument> SubmitJobAsync(SubmitScoringJob job, CancellationToken cancellationToken)
    {
        var body = SubmitJobJson.Write(job);
        return SendAsync(
            () => new HttpRequestMessage(HttpMethod.Post, "api/jobs")
            {
                Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" } } },
            },
            ReadJob,
            idempotent: true,
            cancellationToken);
    }

    /// <summary>Sends with <see cref="CommandRetry"/>; throws <see cref="CliException"/> on failure.</summary>
    public Task<T> SendAsync<T>(Func<HttpRequestMessage> request, bool idempotent, CancellationToken cancellationToken, TimeSpan? attemptTimeout = null) =>
        SendAsync(request, ReadValue<T>, idempotent, cancellationToken, attemptTimeout);

    private static Task<T?> ReadValue<T>(HttpContent content, CancellationToken cancellationToken) => content.ReadFromJsonAsync<T>(Json, cancellationToken);

    private async Task<T> SendAsync<T>(
        Func<HttpRequestMessage> request, Func<HttpContent, CancellationToken, Task<T?>> read, bool idempotent, CancellationToken cancellationToken, TimeSpan? attemptTimeout = null)
    {
        var retry = CommandRetry.Start();
        while (true)
        {
            var result = await TrySendAsync(request, read, cancellationToken, attemptTimeout);
            if (result.Failure is not { } failure)
            {
                return result.Value!;
            }

            // Only "unreachable" failures are worth repeating here (a 500 is most likely the same next time); --wait retries every 5xx.
            var canRepeat = failure.Transient && failure.ExitCode == ExitCodes.Unreachable && (idempotent || failure.NotSent);
            if (!canRepeat || !await retry.WaitAsync(cancellationToken))
            {
                throw new CliException(failure.ExitCode, failure.Message) { Problem = failure.Problem };
            }
        }
    }

    /// <summary>One attempt: the value, or a classified failure.</summary>
    public async Task<ApiResult<T>> TrySendAsync<T>(
        Func<HttpRequestMessage> makeRequest, Func<HttpContent, CancellationToken, Task<T?>> read, CancellationToken cancellationToken, TimeSpan? attemptTimeout = null)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var timeout = attemptTimeout ?? AttemptTimeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            attempt.CancelAfter(timeout);
        }

        try
        {
            using var request = makeRequest();
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, attempt.Token);
            if (response.IsSuccessStatusCode)
            {
                return new ApiResult<T>(await read(response.Content, attempt.Token), null);
            }

            var body = await response.Content.ReadAsStringAsync(attempt.Token);
            var problem = Problem(response, body);
            if (problem == response.ReasonPhrase)
            {
                problem += $" ({request.Method} /{request.RequestUri})"; // no detail in the body: at least say what was asked
            }

            return new ApiResult<T>(default, Classify(response.StatusCode, problem) with { Problem = IsJson(body) ? body : null });
        }
        catch (HttpRequestException ex)
        {
            var notSent = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError;
            return new ApiResult<T>(default, new ApiFailure(
                true, notSent, ExitCodes.Unreachable,
                $"cannot reach the API at {Display(BaseAddress)}: {ex.Message}. Is `batchscore serve` running? Set --api or {ApiVariable}."));
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException && !cancellationToken.IsCancellationRequested)
        {
            return new ApiResult<T>(default, new ApiFailure(
                true, false, ExitCodes.Unreachable,
                ex is OperationCanceledException
                    ? $"the API at {Display(BaseAddress)} did not answer within {timeout.TotalSeconds:N0} s."
                    : $"the connection to the API at {Display(BaseAddress)} broke: {ex.Message}."));
        }
        catch (JsonException)
        {
            return new ApiResult<T>(default, new ApiFailure(false, false, ExitCodes.Failed,
                $"the API at {Display(BaseAddress)} answered with something that is not the expected JSON: is --api the batchscore status API?"));
        }
    }

    public void Dispose() => http.Dispose();

    /// <summary>The address without credentials a user may have put in it.</summary>
    public static string Display(Uri uri) => uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);

    private static ApiFailure Classify(HttpStatusCode status, string problem)
    {
        var code = (int)status;
        var line = $"{code} {problem}";
        return code switch
        {
            400 or 413 or 415 or 422 => new ApiFailure(false, false, ExitCodes.Usage, line),
            401 => new ApiFailure(false, false, ExitCodes.Usage, $"{line} Pass the key with --api-key or {KeyVariable}."),
            403 => new ApiFailure(false, false, ExitCodes.Failed, line),
            408 or 429 => new ApiFailure(true, false, ExitCodes.Unreachable, line),
            502 or 503 or 504 => new ApiFailure(true, false, ExitCodes.Unreachable, $"{line} (the service or one of its dependencies is unavailable; retried)"),
            >= 500 => new ApiFailure(true, false, ExitCodes.Failed, $"{line} (an error inside the service: see its log)"),
            _ => new ApiFailure(false, false, ExitCodes.Failed, line),
        };
    }

    /// <summary>"title: detail" of a problem document (plus validation errors), else the reason phrase.</summary>
    private static string Problem(HttpResponseMessage response, string body)
    {
        var reason = response.ReasonPhrase ?? response.StatusCode.ToString();
        if (string.IsNullOrWhiteSpace(body))
        {
            return reason;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.String)
            {
                return ErrorReporter.OneLine($"{reason}: {root.GetString()}"); // TypedResults.NotFound("...")
            }

            if (root.ValueKind != JsonValueKind.Object)
            {
                return reason;
            }

            var title = Text(root, "title") ?? reason;
            var parts = new List<string>();
            if (Text(root, "detail") is { } detail && detail != title)
            {
                parts.Add(detail);
            }

            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in errors.EnumerateObject())
                {
                    var messages = field.Value.ValueKind == JsonValueKind.Array
                        ? string.Join(" ", field.Value.EnumerateArray().Select(m => m.ToString()))
                        : field.Value.ToString();
                    parts.Add($"{field.Name}: {messages}");
                }
            }

            return ErrorReporter.OneLine(parts.Count == 0 ? title : $"{title}: {string.Join("; ", parts)}");
        }
        catch (JsonException)
        {
            // Not a problem document (a proxy's HTML page, say): the reason phrase says enough, the body is not shown.
            return reason;
        }
    }

    private static bool IsJson(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}

/// <param name="Transient">Worth retrying: the same request may succeed later.</param>
/// <param name="NotSent">The request never reached the server (connection refused), so even a non-idempotent one may be repeated.</param>
/// <param name="Problem">The problem document the API answered with (JSON), when it sent one.</param>
internal sealed record ApiFailure(bool Transient, bool NotSent, int ExitCode, string Message, string? Problem = null);

internal sealed record ApiResult<T>(T? Value, ApiFailure? Failure);

/// <summary>Capped exponential backoff within a time budget.</summary>
internal sealed record RetryPolicy(TimeSpan Budget, TimeSpan FirstDelay, TimeSpan MaxDelay)
{
    public Attempts Start() => new(this);

    internal sealed class Attempts(RetryPolicy policy)
    {
        private readonly Stopwatch _elapsed = Stopwatch.StartNew();
        private TimeSpan _delay = policy.FirstDelay;

        public TimeSpan Elapsed => _elapsed.Elapsed;

        /// <summary>Waits before the next attempt; false when the budget would be exceeded.</summary>
        public async Task<bool> WaitAsync(CancellationToken cancellationToken, TimeSpan? notAfter = null)
        {
            var delay = _delay;
            if (_elapsed.Elapsed + delay > policy.Budget || (notAfter is { } limit && delay > limit))
            {
                return false;
            }

            await Task.Delay(delay, cancellationToken);
            _delay = TimeSpan.FromTicks(Math.Min(policy.MaxDelay.Ticks, _delay.Ticks * 2));
            return true;
        }

        public void Reset()
        {
            _elapsed.Restart();
            _delay = policy.FirstDelay;
        }
    }
}
