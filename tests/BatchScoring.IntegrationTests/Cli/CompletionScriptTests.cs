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
            var wrapper = await WriteCliWrapperAsync(bin.FullName);
            var scriptPath = await WriteScriptAsync("bash", Path.Combine(bin.FullName, "batchscore.bash"));

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

    [Theory]
    [InlineData("fpath", "batchscore jo", "batchscore jobs")]
    [InlineData("fpath", "batchscore jobs sta", "batchscore jobs status")]
    [InlineData("fpath", "batchscore models history --mo", "batchscore models history --model")]
    [InlineData("fpath", "batchscore schedules pause --sch", "batchscore schedules pause --schedule")]
    [InlineData("source", "batchscore jo", "batchscore jobs")]
    public async Task Zsh_script_completes_a_typed_line_in_an_interactive_zsh(string install, string typed, string completed)
    {
        if (!ExistsOnPath("zsh"))
        {
            Assert.Skip("zsh is not installed (./build.sh deps installs it)");
        }

        var bin = Directory.CreateTempSubdirectory("batchscore-zsh-");
        try
        {
            var wrapper = await WriteCliWrapperAsync(bin.FullName);
            // As docs/cli.md installs it: a file named _batchscore in $fpath that compinit autoloads, or sourced after compinit.
            await WriteScriptAsync("zsh", Path.Combine(bin.FullName, "_batchscore"));
            var setup = install == "fpath"
                ? $"fpath=('{bin.FullName}' $fpath); autoload -U compinit; compinit -u -D"
                : $"autoload -U compinit; compinit -u -D; source '{Path.Combine(bin.FullName, "_batchscore")}'";

            // A terminal (zsh/zpty) running an interactive zsh: type the line and TAB, then print what the line became.
            // LINE$((40+2)) prints as LINE42, which the echo of the typed keys does not contain.
            var driver = $$"""
                chmod +x '{{wrapper}}'
                zmodload zsh/zpty
                zpty -b shell 'PATH={{bin.FullName}}:$PATH zsh -f -i'
                zpty -w shell "{{setup}}; print READY\$((40+2))"
                zpty -r shell out '*READY42*'
                zpty -w -n shell $'{{typed}}\t\x01print -r -- LINE$((40+2)):\x05\n'
                zpty -r shell out $'*LINE42:*\n'
                print -r -- "$out"
                zpty -d shell
                """;
            var start = new ProcessStartInfo("zsh", ["-f", "-c", driver]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var zsh = Process.Start(start)!;
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            limit.CancelAfter(TimeSpan.FromSeconds(60));
            var stderr = zsh.StandardError.ReadToEndAsync(limit.Token);
            var stdout = await zsh.StandardOutput.ReadToEndAsync(limit.Token);
            await zsh.WaitForExitAsync(limit.Token);
            var line = stdout.Split('\n').Select(l => l.TrimEnd('\r', ' ')).LastOrDefault(l => l.StartsWith("LINE42:", StringComparison.Ordinal));
            Assert.True(line is not null, stdout + await stderr);
            Assert.Equal(completed, line["LINE42:".Length..]);
        }
        finally
        {
            bin.Delete(recursive: true);
        }
    }

    /// <summary>`batchscore` in <paramref name="directory"/>, to put on PATH as an installed tool would be; made executable by the shell that runs it.</summary>
    private static async Task<string> WriteCliWrapperAsync(string directory)
    {
        var wrapper = Path.Combine(directory, "batchscore");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "batchscore.dll")}' \"$@\"\n", Ct);
        return wrapper;
    }

    /// <summary>What `batchscore completion <paramref name="shell"/>` prints, saved at <paramref name="path"/>.</summary>
    private static async Task<string> WriteScriptAsync(string shell, string path)
    {
        var script = await CliProcess.RunAsync(Ct, "completion", shell);
        Assert.Equal(0, script.Exit);
        await File.WriteAllTextAsync(path, script.Stdout, Ct);
        return path;
    }

    private static bool ExistsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, program)));

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
