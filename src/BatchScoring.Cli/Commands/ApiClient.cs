using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchScoring.Cli.Commands;

/// <summary>HTTP client for the status API (--api / BATCHSCORING_API, --api-key / BATCHSCORING_API_KEY).</summary>
internal sealed class ApiClient(HttpClient http) : IDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static Option<string> ApiOption { get; } = new("--api")
    {
        Description = "Status API address (env BATCHSCORING_API).",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BATCHSCORING_API") ?? "http://127.0.0.1:5080",
    };

    public static Option<string?> KeyOption { get; } = new("--api-key")
    {
        Description = "API key (env BATCHSCORING_API_KEY).",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BATCHSCORING_API_KEY"),
    };

    public static ApiClient From(ParseResult parse)
    {
        var http = new HttpClient { BaseAddress = new Uri(parse.GetRequiredValue(ApiOption).TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(10) };
        if (parse.GetValue(KeyOption) is { Length: > 0 } key)
        {
            http.DefaultRequestHeaders.Add("X-Api-Key", key);
        }

        return new ApiClient(http);
    }

    public HttpClient Http => http;

    public async Task<(bool Ok, T? Value, string Error)> SendAsync<T>(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            return (false, default, $"cannot reach the API at {http.BaseAddress}: {ex.Message} (is `batchscore serve` running? set --api or BATCHSCORING_API)");
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                return (true, await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken), "");
            }

            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            string detail = body;
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("detail", out var d))
                {
                    detail = d.GetString() ?? body;
                }
            }
            catch (JsonException)
            {
                // not a problem document; show the raw body
            }

            return (false, default, $"{(int)response.StatusCode} {response.ReasonPhrase}: {detail}");
        }
    }

    public Task<(bool Ok, T? Value, string Error)> GetAsync<T>(string path, CancellationToken cancellationToken) =>
        SendAsync<T>(new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);

    public Task<(bool Ok, T? Value, string Error)> PostJsonAsync<T>(string path, object body, CancellationToken cancellationToken) =>
        SendAsync<T>(new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: Json) }, cancellationToken);

    public Task<(bool Ok, T? Value, string Error)> PostFileAsync<T>(string path, string file, CancellationToken cancellationToken)
    {
        var content = new StreamContent(File.OpenRead(file));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return SendAsync<T>(new HttpRequestMessage(HttpMethod.Post, path) { Content = content }, cancellationToken);
    }

    public void Dispose() => http.Dispose();
}
