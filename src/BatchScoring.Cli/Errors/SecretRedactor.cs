using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace BatchScoring.Cli.Errors;

/// <summary>
/// Last line of defence for everything the CLI and <c>serve</c> print: replaces the secrets found in configuration
/// (connection-string passwords, passwords in URIs, API keys, settings named like a secret, URL query strings) with ***.
/// The sources are fixed not to put secrets in messages; this catches what a library might still echo.
/// </summary>
public sealed partial class SecretRedactor
{
    private const string Mask = "***";
    private const int MinimumLength = 4; // shorter values would mask ordinary words

    private readonly string[] _secrets;

    private SecretRedactor(IEnumerable<string> secrets) =>
        _secrets = secrets.Where(s => s.Length >= MinimumLength).Distinct(StringComparer.Ordinal).OrderByDescending(s => s.Length).ToArray();

    /// <summary>The redactor of this process: configuration from appsettings.json and the environment until <c>serve</c> replaces it.</summary>
    public static SecretRedactor Current { get; set; } = FromConfiguration(new ConfigurationBuilder()
        .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true)
        .AddEnvironmentVariables()
        .Build());

    public static SecretRedactor FromConfiguration(IConfiguration configuration)
    {
        var secrets = new List<string>();
        foreach (var (key, value) in configuration.AsEnumerable())
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            var segments = key.Split(':');
            var name = segments[^1];
            var parent = segments.Length > 1 ? segments[^2] : "";
            if (segments[0].Equals("ConnectionStrings", StringComparison.OrdinalIgnoreCase))
            {
                secrets.AddRange(ConnectionStringSecrets(value));
            }
            else if (SecretName().IsMatch(name) || (int.TryParse(name, out _) && SecretName().IsMatch(parent)))
            {
                secrets.Add(value);
            }
            else if (key.Equals("BATCHSCORING_API_KEY", StringComparison.OrdinalIgnoreCase))
            {
                secrets.Add(value);
            }

            secrets.AddRange(UriSecrets(value));
        }

        return new SecretRedactor(secrets);
    }

    public string Redact(string text)
    {
        foreach (var secret in _secrets)
        {
            if (text.Contains(secret, StringComparison.Ordinal))
            {
                text = text.Replace(secret, Mask, StringComparison.Ordinal);
            }
        }

        return text;
    }

    private static IEnumerable<string> ConnectionStringSecrets(string value)
    {
        if (Uri.TryCreate(value, UriKind.Absolute, out _))
        {
            yield break; // URIs: UriSecrets
        }

        string? password = null;
        try
        {
            password = new NpgsqlConnectionStringBuilder(value).Password;
        }
        catch (ArgumentException)
        {
            // not an Npgsql connection string: look for "password=" by hand below
        }

        if (password is { Length: > 0 })
        {
            yield return password;
        }

        foreach (Match match in PasswordPair().Matches(value))
        {
            yield return match.Groups["value"].Value.Trim();
        }
    }

    private static IEnumerable<string> UriSecrets(string value)
    {
        if (!value.Contains("://", StringComparison.Ordinal) || !Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri))
        {
            yield break;
        }

        var userInfo = uri.UserInfo;
        if (userInfo.IndexOf(':', StringComparison.Ordinal) is var colon and >= 0)
        {
            var raw = userInfo[(colon + 1)..];
            yield return raw;
            yield return Uri.UnescapeDataString(raw);
        }

        // Tokens travel in query strings (webhooks): the whole query is secret.
        if (uri.Query.Length > 1)
        {
            yield return uri.Query[1..];
            foreach (var pair in uri.Query[1..].Split('&'))
            {
                var value2 = pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..];
                yield return value2;
                yield return Uri.UnescapeDataString(value2);
            }
        }
    }

    [GeneratedRegex("(password|passwd|secret|token|apikey|api_key|keys)$", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();

    [GeneratedRegex(@"(?:password|pwd)\s*=\s*(?<value>[^;]+)", RegexOptions.IgnoreCase)]
    private static partial Regex PasswordPair();
}
