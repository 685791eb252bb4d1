using System.Diagnostics;
using BatchScoring.IntegrationTests.Infrastructure;

namespace BatchScoring.IntegrationTests.Cli;

/// <summary><c>batchscore completion bash</c>: the printed script, loaded into a real bash, completes verbs and options.</summary>
public sealed class CompletionScriptTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("batchscore jo", "jobs")]
    [InlineData("batchscore jobs sta", "status")]
    [InlineData("batchscore models history --mo", "--model")]
    [InlineData("batchscore schedules pause --sch", "--schedule")]
    public async Task Bash_script_completes_through_the_cli(string line, string expected)
    {
        var bin = Directory.CreateTempSubdirectory("batchscore-completion-");
        try
        {
            // `batchscore` on PATH, as an installed tool would be.
            var wrapper = Path.Combine(bin.FullName, "batchscore");
            await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "batchscore.dll")}' \"$@\"\n", Ct);

            var script = await CliProcess.RunAsync(Ct, "completion", "bash");
            Assert.Equal(0, script.Exit);
            var scriptPath = Path.Combine(bin.FullName, "batchscore.bash");
            await File.WriteAllTextAsync(scriptPath, script.Stdout, Ct);

            // What bash sets before it calls a completion function (COMP_WORDS split on blanks; the cursor at the end).
            var words = line.Split(' ');
            var probe = $$"""
                chmod +x '{{wrapper}}'
                source '{{scriptPath}}'
                complete -p batchscore
                COMP_LINE='{{line}}'; COMP_POINT={{line.Length}}; COMP_WORDS=({{string.Join(' ', words.Select(w => $"'{w}'"))}}); COMP_CWORD={{words.Length - 1}}
                _batchscore_completions
                printf 'candidate:%s\n' "${COMPREPLY[@]}"
                """;
            var start = new ProcessStartInfo("bash", ["--noprofile", "--norc", "-c", probe]) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["PATH"] = $"{bin.FullName}:{Environment.GetEnvironmentVariable("PATH")}";
            using var bash = Process.Start(start)!;
            var stderr = bash.StandardError.ReadToEndAsync(Ct);
            var stdout = await bash.StandardOutput.ReadToEndAsync(Ct);
            await bash.WaitForExitAsync(Ct);
            var candidates = stdout.Split('\n').Where(l => l.StartsWith("candidate:", StringComparison.Ordinal)).Select(l => l["candidate:".Length..]).ToList();
            Assert.True(bash.ExitCode == 0, stdout + await stderr);
            Assert.Contains("-F _batchscore_completions batchscore", stdout, StringComparison.Ordinal);
            Assert.Equal([expected], candidates);
        }
        finally
        {
            bin.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Zsh_script_registers_the_same_directive()
    {
        var zsh = await CliProcess.RunAsync(Ct, "completion", "zsh");
        Assert.Equal(0, zsh.Exit);
        Assert.StartsWith("#compdef batchscore", zsh.Stdout, StringComparison.Ordinal);
        Assert.Contains("[suggest:${#line}]", zsh.Stdout, StringComparison.Ordinal);
        CliAssert.OneLineError(2, await CliProcess.RunAsync(Ct, "completion", "fish"));
    }
}
