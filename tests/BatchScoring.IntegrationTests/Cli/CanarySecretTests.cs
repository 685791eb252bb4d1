using System.CommandLine;
using System.Diagnostics;
using System.Text;
using BatchScoring.Cli.Commands;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.Scoring.Data;
using BatchScoring.Scoring.OnnxWriter;
using Npgsql;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary>
/// Plants distinctive secrets (PostgreSQL and RabbitMQ passwords, API keys, a webhook token) in the configuration of a
/// real `serve` process and of CLI processes, exercises them (good and bad jobs, 400/401/404, /metrics, every --help,
/// unreachable database and broker), and looks for the secrets in everything they printed or answered: none may appear.
/// </summary>
public sealed class CanarySecretTests(ServerFixture servers) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bs-canary-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Help_of_every_verb_never_shows_the_api_key()
    {
        var key = "helpCanary" + Guid.NewGuid().ToString("N")[..10];
        var environment = new Dictionary<string, string?> { ["BATCHSCORING_API_KEY"] = key, ["BATCHSCORING_API"] = $"http://127.0.0.1:1/?token={key}" };
        var outputs = await HelpOfEveryVerbAsync(environment);
        Assert.Contains(outputs, o => o.Contains("--api-key", StringComparison.Ordinal));
        Assert.All(outputs, o => Assert.DoesNotContain(key, o, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Planted_secrets_appear_nowhere_in_logs_errors_problem_details_metrics_or_help()
    {
        var tag = Guid.NewGuid().ToString("N")[..10];
        var secrets = new Dictionary<string, string>
        {
            ["PostgreSQL password"] = "pgCanary" + tag,
            ["RabbitMQ password"] = "mqCanary" + tag,
            ["API key"] = "keyCanaryWrite" + tag,
            ["read-only API key"] = "keyCanaryRead" + tag,
            ["webhook token"] = "hookCanary" + tag,
            ["webhook signing secret"] = "whsec_" + Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes("hookSecretCanary" + tag)),
        };
        var captured = new StringBuilder();
        void Capture(string what, string text)
        {
            lock (captured)
            {
                captured.Append("=== ").AppendLine(what).AppendLine(text);
            }
        }

        await using var broker = await PrivateRabbitMq.StartAsync("canary_" + tag, secrets["RabbitMQ password"], Ct);
        var role = "bstest_canary_" + tag;
        await using (var admin = new NpgsqlConnection(servers.PostgresAdminConnectionString))
        {
            await admin.OpenAsync(Ct);
            foreach (var sql in new[] { $"CREATE ROLE {role} LOGIN PASSWORD '{secrets["PostgreSQL password"]}'", $"CREATE DATABASE {role} OWNER {role}" })
            {
                await using var create = new NpgsqlCommand(sql, admin);
                await create.ExecuteNonQueryAsync(Ct);
            }
        }

        try
        {
            var admin = new NpgsqlConnectionStringBuilder(servers.PostgresAdminConnectionString);
            var port = CliAssert.ClosedPort();
            var closed = CliAssert.ClosedPort();
            var api = $"http://127.0.0.1:{port}";
            var environment = new Dictionary<string, string?>
            {
                ["ConnectionStrings__Postgres"] = $"Host={admin.Host};Port={admin.Port};Username={role};Password={secrets["PostgreSQL password"]};Database={role}",
                ["ConnectionStrings__RabbitMq"] = broker.Uri,
                ["BatchScoring__Api__Keys__0"] = secrets["API key"],
                ["BatchScoring__Api__ReadOnlyKeys__0"] = secrets["read-only API key"],
                ["BatchScoring__Drift__WebhookUrl"] = $"http://127.0.0.1:{closed}/hook?token={secrets["webhook token"]}",
                ["BatchScoring__Drift__WebhookSecret"] = secrets["webhook signing secret"],
                ["BatchScoring__ModelStorePath"] = Path.Combine(_dir, "models"),
                ["BatchScoring__IntraOpThreads"] = "1",
                ["Logging__LogLevel__Default"] = "Information",
                ["BATCHSCORING_API"] = api,
                ["BATCHSCORING_API_KEY"] = secrets["API key"],
            };

            using (var serve = StartServe(environment, api, Capture))
            {
                await WaitUntilLiveAsync(api, serve);
                await ExerciseAsync(environment, api, secrets, Capture);
                await StopAsync(serve);
            }

            // Unreachable database and broker, with the secrets in their connection strings.
            var deadDatabase = new Dictionary<string, string?>(environment)
            {
                ["ConnectionStrings__Postgres"] = $"Host=127.0.0.1;Port={closed};Username={role};Password={secrets["PostgreSQL password"]};Timeout=2",
            };
            Record(Capture, "migrate, database down", await CliProcess.RunAsync(deadDatabase, Ct, "migrate", "--connect-timeout", "1"));
            Record(Capture, "migrate --verbose, database down", await CliProcess.RunAsync(deadDatabase, Ct, "migrate", "--connect-timeout", "1", "--verbose"));
            var deadBroker = new Dictionary<string, string?>(environment)
            {
                ["ConnectionStrings__RabbitMq"] = $"amqp://canary_{tag}:{secrets["RabbitMQ password"]}@127.0.0.1:{closed}/",
            };
            var brokerDown = await CliAssert.RunWithLimitAsync(deadBroker, TimeSpan.FromSeconds(30), Ct, "serve", "--roles", "worker", "--urls", "http://127.0.0.1:0");
            Capture("serve, broker down", brokerDown.Stdout + brokerDown.Stderr);
            Record(Capture, "jobs list, API down", await CliProcess.RunAsync(environment, Ct, "jobs", "list"));

            foreach (var help in await HelpOfEveryVerbAsync(environment))
            {
                Capture("help", help);
            }
        }
        finally
        {
            await using var admin = new NpgsqlConnection(servers.PostgresAdminConnectionString);
            await admin.OpenAsync(CancellationToken.None);
            foreach (var sql in new[] { $"DROP DATABASE IF EXISTS {role} WITH (FORCE)", $"DROP ROLE IF EXISTS {role}" })
            {
                await using var drop = new NpgsqlCommand(sql, admin);
                await drop.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }

        var everything = captured.ToString();
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), $"bs-canary-capture-{tag}.txt"), everything, Ct);
        Assert.Contains("Roles: All", everything, StringComparison.Ordinal); // the service's log was captured
        Assert.Contains("batchscoring_", everything, StringComparison.Ordinal); // and /metrics
        Assert.Contains("PostgreSQL is not reachable", everything, StringComparison.Ordinal);
        foreach (var (what, secret) in secrets)
        {
            var at = everything.IndexOf(secret, StringComparison.Ordinal);
            Assert.True(at < 0, $"the {what} leaked: ...{everything[Math.Max(0, at - 300)..Math.Min(everything.Length, at + 100)]}...");
        }
    }

    private async Task ExerciseAsync(Dictionary<string, string?> environment, string api, Dictionary<string, string> secrets, Action<string, string> capture)
    {
        var model = Path.Combine(_dir, "model.onnx");
        await File.WriteAllBytesAsync(model, SampleModels.Mlp([6, 4, 1], seed: 9).Bytes, Ct);
        var input = Path.Combine(_dir, "in.parquet");
        await DatasetGenerator.WriteParquetAsync(input, new GeneratedDatasetOptions { Rows = 3_000, Features = 6, RowGroupRows = 1_000, NaNEvery = 500 }, Ct);

        var registered = await CliProcess.RunAsync(environment, Ct, "models", "register", "--name", "m", "--file", model);
        Record(capture, "models register", registered);
        Assert.True(registered.Exit == 0, registered.Stderr);
        var good = await CliProcess.RunAsync(environment, Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "canary_results", "--wait");
        Record(capture, "good job", good);
        Assert.True(good.Exit == 0, good.Stdout + good.Stderr);
        Record(capture, "failing job", await CliProcess.RunAsync(environment, Ct,
            "jobs", "submit", "--model", "m", "--input", input, "--key-column", "customer_id", "--output-table", "canary_results2", "--max-failed-rows", "0", "--wait"));
        Record(capture, "bad job", await CliProcess.RunAsync(environment, Ct,
            "jobs", "submit", "--model", "m", "--input", Path.Combine(_dir, "missing.csv"), "--key-column", "id", "--output-table", "t"));
        Record(capture, "unknown job", await CliProcess.RunAsync(environment, Ct, "jobs", "status", Guid.NewGuid().ToString()));
        Record(capture, "jobs list", await CliProcess.RunAsync(environment, Ct, "jobs", "list", "--state", "bogus"));
        Record(capture, "models list", await CliProcess.RunAsync(environment, Ct, "models", "list"));
        Record(capture, "drift audit", await CliProcess.RunAsync(environment, Ct, "drift", "audit", "--name", "m"));
        Record(capture, "alias", await CliProcess.RunAsync(environment, Ct, "models", "alias", "--name", "m", "--alias", "prod", "--version", "7"));
        Record(capture, "wrong key", await CliProcess.RunAsync(new Dictionary<string, string?>(environment) { ["BATCHSCORING_API_KEY"] = "wrong" }, Ct, "jobs", "list"));

        using var http = new HttpClient { BaseAddress = new Uri(api) };
        async Task Get(string path, string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            if (key is not null)
            {
                request.Headers.Add("X-Api-Key", key);
            }

            using var response = await http.SendAsync(request, Ct);
            capture($"GET {path} → {(int)response.StatusCode}", await response.Content.ReadAsStringAsync(Ct));
        }

        await Get($"/api/jobs/{Guid.NewGuid()}", secrets["API key"]);
        await Get("/api/jobs?state=bogus", secrets["read-only API key"]);
        await Get("/api/jobs", null);
        await Get("/api/nothing-here", secrets["API key"]);
        await Get("/metrics", null);
        await Get("/health/ready", null);
        using var bad = new HttpRequestMessage(HttpMethod.Post, "/api/jobs") { Content = new StringContent("{\"model\": 3,", Encoding.UTF8, "application/json") };
        bad.Headers.Add("X-Api-Key", secrets["API key"]);
        using var badResponse = await http.SendAsync(bad, Ct);
        capture($"POST /api/jobs (truncated JSON) → {(int)badResponse.StatusCode}", await badResponse.Content.ReadAsStringAsync(Ct));
    }

    private static void Record(Action<string, string> capture, string what, (int Exit, string Stdout, string Stderr) run) =>
        capture($"{what} (exit {run.Exit})", run.Stdout + run.Stderr);

    private static Process StartServe(Dictionary<string, string?> environment, string api, Action<string, string> capture)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "batchscore.dll"), "serve", "--migrate", "--urls", api])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) capture("serve stdout", e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) capture("serve stderr", e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitUntilLiveAsync(string api, Process serve)
    {
        using var http = new HttpClient { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            Assert.False(serve.HasExited, $"serve exited with {(serve.HasExited ? serve.ExitCode : 0)}");
            try
            {
                using var response = await http.GetAsync("/health/ready", Ct);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            Assert.True(DateTime.UtcNow < deadline, "serve did not become ready within 2 minutes");
            await Task.Delay(250, Ct);
        }
    }

    private static async Task StopAsync(Process serve)
    {
        // SIGTERM: a graceful stop, so the log of shutting down is part of what is checked.
        using (var kill = Process.Start("kill", ["-TERM", serve.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await serve.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            serve.Kill(entireProcessTree: true);
        }

        serve.WaitForExit(); // flushes the redirected output
    }

    /// <summary>`--help` of the root and of every command and subcommand, four processes at a time.</summary>
    private static async Task<List<string>> HelpOfEveryVerbAsync(IReadOnlyDictionary<string, string?> environment)
    {
        Command[] top =
        [
            DemoCommand.Create(), ScoreCommand.Create(), GenerateCommand.Create(), ServeCommand.Create(), MigrateCommand.Create(),
            ModelsCommand.Create(), JobsCommand.Create(), DriftCommand.Create(),
        ];
        var paths = new List<string[]> { Array.Empty<string>() };
        void Walk(Command command, string[] prefix)
        {
            var path = prefix.Append(command.Name).ToArray();
            paths.Add(path);
            foreach (var sub in command.Subcommands)
            {
                Walk(sub, path);
            }
        }

        foreach (var command in top)
        {
            Walk(command, []);
        }

        using var gate = new SemaphoreSlim(4);
        var runs = paths.Select(async path =>
        {
            await gate.WaitAsync(Ct);
            try
            {
                var run = await CliProcess.RunAsync(environment, Ct, [.. path, "--help"]);
                Assert.True(run.Exit == 0, $"{string.Join(' ', path)} --help: {run.Stderr}");
                return run.Stdout + run.Stderr;
            }
            finally
            {
                gate.Release();
            }
        });
        return (await Task.WhenAll(runs)).ToList();
    }
}
