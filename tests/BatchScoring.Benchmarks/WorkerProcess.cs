using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BatchScoring.Cli.Hosting;

namespace BatchScoring.Benchmarks;

/// <summary>
/// A `batchscore serve` child process (all roles, as a user starts it, or only some) with its own loopback HTTP port
/// (API, /metrics, /health/ready), so its memory (VmHWM) and CPU time are its own. Output goes to a log file.
/// </summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    /// <summary>The environment the deployments give `serve` (deploy/docker, docker-compose.yml, deploy/local).</summary>
    public static readonly IReadOnlyDictionary<string, string> ServeEnvironment = new Dictionary<string, string>
    {
        ["DOTNET_TieredCompilation"] = "0",
        ["MALLOC_ARENA_MAX"] = "2",
        ["MALLOC_MMAP_THRESHOLD_"] = "1048576",
        ["MALLOC_TRIM_THRESHOLD_"] = "1048576",
    };

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logGate = new();
    private readonly HttpClient _http;

    private WorkerProcess(Process process, StreamWriter log, string logPath, int port)
    {
        _process = process;
        _log = log;
        LogPath = logPath;
        Port = port;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public string LogPath { get; }

    public int Port { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public static WorkerProcess Start(IReadOnlyDictionary<string, string?> environment, string logPath, string roles = "api,worker,scheduler")
    {
        var port = FreePort();
        // batchscore.dll is copied next to the benchmark by its project reference; run it with the same dotnet host.
        var start = ChildCommand.StartInfo(typeof(ServiceHost).Assembly.Location);
        foreach (var argument in new[] { "serve", "--roles", roles, "--urls", $"http://127.0.0.1:{port}", "--migrate" })
        {
            start.ArgumentList.Add(argument);
        }

        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        // The deployment's settings: tiered compilation off (ServiceRuntime.props) and glibc's (README "Memory": ONNX
        // Runtime allocates and frees large tensors from many threads; without these, per-thread malloc arenas keep
        // ~0.5 GiB of freed memory).
        foreach (var (key, value) in ServeEnvironment)
        {
            start.Environment[key] = Environment.GetEnvironmentVariable(key) ?? value;
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(logPath)!);
        var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process, log, logPath, port);
        process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The worker process exited with code {_process.ExitCode} before it was ready:\n{LogTail()}");
            }

            try
            {
                using var response = await _http.GetAsync("health/ready", cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The worker process was not ready after {timeout.TotalSeconds:F0} s:\n{LogTail()}");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    /// <summary>The worker's Prometheus metrics, summed over label sets: name → value.</summary>
    public async Task<Dictionary<string, double>> ScrapeAsync(CancellationToken cancellationToken)
    {
        var text = await _http.GetStringAsync("metrics", cancellationToken);
        return ParseMetrics(text);
    }

    internal static Dictionary<string, double> ParseMetrics(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var nameEnd = line.IndexOfAny(['{', ' ']);
            if (nameEnd <= 0)
            {
                continue;
            }

            var name = line[..nameEnd];
            var rest = line[nameEnd] == '{' ? line[(line.LastIndexOf('}') + 1)..] : line[nameEnd..];
            var token = rest.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (token is not null && double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                values[name] = values.GetValueOrDefault(name) + value;
            }
        }

        return values;
    }

    /// <summary>
    /// Resets VmHWM to the current RSS (Linux: writing 5 to /proc/PID/clear_refs), so the next reading is the peak of
    /// what ran in between; false where that is not possible (the peak then covers the whole process life).
    /// </summary>
    public bool ResetPeakRss()
    {
        try
        {
            File.WriteAllText($"/proc/{_process.Id}/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public Uri BaseAddress => _http.BaseAddress!;

    /// <summary>Peak resident set size (VmHWM) in bytes.</summary>
    public long PeakRssBytes => ReadStatusKb("VmHWM:") * 1024;

    public long RssBytes => ReadStatusKb("VmRSS:") * 1024;

    public double CpuSeconds
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime.TotalSeconds;
        }
    }

    /// <summary>utime + stime of every process named "postgres" (clock ticks assumed 100/s, as on Linux).</summary>
    public static double PostgresCpuSeconds()
    {
        long ticks = 0;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                var name = Path.GetFileName(dir);
                if (name.Length == 0 || !char.IsAsciiDigit(name[0]))
                {
                    continue;
                }

                try
                {
                    var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    var open = stat.IndexOf('(', StringComparison.Ordinal);
                    var close = stat.LastIndexOf(')');
                    if (open < 0 || close < open || stat[(open + 1)..close] != "postgres")
                    {
                        continue;
                    }

                    var fields = stat[(close + 2)..].Split(' ');
                    ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
                {
                    // the process ended, or is not readable
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
            return double.NaN;
        }

        return ticks / 100.0;
    }

    public string LogTail(int lines = 40)
    {
        lock (_logGate)
        {
            _log.Flush();
        }

        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException ex)
        {
            return $"(cannot read {LogPath}: {ex.Message})";
        }
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            // SIGTERM for a graceful stop (the bus disconnects, the queues stay consistent); SIGKILL if it hangs.
            try
            {
                using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false });
                if (kill is not null)
                {
                    await kill.WaitForExitAsync();
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // no kill(1): fall through to Kill()
            }

            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        _process.Dispose();
        lock (_logGate)
        {
            _log.Dispose();
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logGate)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // output after the log was closed
            }
        }
    }

    private long ReadStatusKb(string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var digits = line[field.Length..].Trim().Split(' ')[0];
                    return long.Parse(digits, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // not Linux, or the process is gone
        }

        return field == "VmHWM:" ? _process.PeakWorkingSet64 / 1024 : _process.WorkingSet64 / 1024;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
