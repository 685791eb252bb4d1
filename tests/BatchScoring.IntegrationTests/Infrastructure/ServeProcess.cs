using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace BatchScoring.IntegrationTests.Infrastructure;

/// <summary>A `batchscore serve` child process (a real role, as deployed) on a free loopback port, its output kept.</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ServeProcess(Process process, string url)
    {
        _process = process;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Url { get; }

    public HttpClient Http { get; }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    public string Output => string.Join(Environment.NewLine, _output);

    public static ServeProcess Start(string roles, IReadOnlyDictionary<string, string> environment, params string[] extraArgs)
    {
        var url = $"http://127.0.0.1:{FreeTcpPort()}";
        var cli = Path.Combine(AppContext.BaseDirectory, "batchscore.dll");
        var start = new ProcessStartInfo("dotnet", [cli, "serve", "--roles", roles, "--urls", url, .. extraArgs])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start batchscore serve");
        var serve = new ServeProcess(process, url);
        process.OutputDataReceived += (_, e) => serve.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => serve.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return serve;
    }

    private void Keep(string? line)
    {
        if (line is not null && _output.Count < 5_000)
        {
            _output.Enqueue(line);
        }
    }

    /// <summary>Status code of GET <paramref name="path"/>, or null while nothing answers.</summary>
    public async Task<HttpStatusCode?> StatusAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await Http.GetAsync(path, cancellationToken);
            return response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Waits until GET <paramref name="path"/> answers <paramref name="expected"/>; fails (with the process output) after <paramref name="timeout"/> or if the process exits.</summary>
    public async Task WaitForStatusAsync(string path, HttpStatusCode expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        HttpStatusCode? last = null;
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(HasExited, $"serve exited with {(_process.HasExited ? _process.ExitCode : 0)} while waiting for {path} = {(int)expected}:{Environment.NewLine}{Output}");
            last = await StatusAsync(path, cancellationToken);
            if (last == expected)
            {
                return;
            }

            await Task.Delay(200, cancellationToken);
        }

        Assert.Fail($"{Url}{path} answered {last?.ToString() ?? "nothing"}, not {expected}, within {timeout}:{Environment.NewLine}{Output}");
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        Http.Dispose();
        _process.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"serve pid {_process.Id} at {Url}");
}
