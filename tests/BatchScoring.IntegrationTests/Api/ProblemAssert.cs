using System.Net;
using System.Text.Json;

namespace BatchScoring.IntegrationTests.Api;

/// <summary>Checks that a response is an RFC 7807 problem with the expected status and a detail that says what is wrong.</summary>
internal static class ProblemAssert
{
    public static async Task<JsonElement> IsProblemAsync(HttpResponseMessage response, HttpStatusCode status, params string[] detailContains)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.True(problem.TryGetProperty("detail", out var detailElement), $"no detail: {body}");
        var detail = detailElement.GetString() ?? "";
        Assert.False(string.IsNullOrWhiteSpace(detail), body);
        foreach (var part in detailContains)
        {
            Assert.True(detail.Contains(part, StringComparison.Ordinal), $"detail does not name '{part}': {detail}");
        }

        // Never a stack trace or an exception's type.
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", body, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", body, StringComparison.Ordinal);
        return problem;
    }
}
