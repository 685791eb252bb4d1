using System.CommandLine;
using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Model name.", Required = true };
        var file = new Option<FileInfo>("--file") { Description = "ONNX file.", Required = true };
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var register = new Command("register", "Upload an ONNX file as the model's next version.") { name, file, json };
        register.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = parse.GetRequiredValue(file);
            if (!path.Exists)
            {
                return ErrorReporter.Print(ExitCodes.Usage, $"model file '{path.FullName}' does not exist.");
            }

            var info = await api.PostFileAsync<ModelVersionInfo>($"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/versions", path.FullName, ct);
            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(info, ApiClient.Json) : $"{info.Name} v{info.Version} sha256 {info.Sha256}");
            return ExitCodes.Succeeded;
        });

        var aliasName = new Option<string>("--name") { Description = "Model name.", Required = true };
        var alias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var version = new Option<int>("--version") { Description = "Version the alias points at.", Required = true };
        var (canary, percent) = CanaryOptions.Create();
        var setAlias = new Command("alias", "Point an alias at a version (promote / roll back); with --canary and --percent, send that share of score request rows to a canary version.")
        {
            aliasName, alias, version, canary, percent,
        };
        CanaryOptions.AddExamples(setAlias);
        setAlias.SetAction(async (parse, ct) =>
        {
            if (CanaryOptions.Problem(parse, canary, percent) is { } problem)
            {
                return ErrorReporter.Print(ExitCodes.Usage, problem);
            }

            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(aliasName))}/aliases/{Uri.EscapeDataString(parse.GetRequiredValue(alias))}";
            var info = await api.PutJsonAsync<ModelVersionInfo>(path, CanaryOptions.Body(parse, parse.GetValue(version), canary, percent), ct);
            Console.Error.WriteLine($"{parse.GetRequiredValue(alias)} → {info.Name} v{info.Version}{CanaryOptions.Describe(parse, canary, percent)}");
            return ExitCodes.Succeeded;
        });

        var rollbackName = new Option<string>("--name") { Description = "Model name.", Required = true };
        var rollbackAlias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var rollback = new Command("rollback", "Undo an alias's last move: point it back at the version it had before.") { rollbackName, rollbackAlias };
        rollback.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(rollbackName))}/aliases/{Uri.EscapeDataString(parse.GetRequiredValue(rollbackAlias))}/rollback";
            var info = await api.PostJsonAsync<ModelVersionInfo>(path, new { }, ct);
            Console.Error.WriteLine($"{parse.GetRequiredValue(rollbackAlias)} → {info.Name} v{info.Version}");
            return ExitCodes.Succeeded;
        });

        var historyName = new Option<string>("--name") { Description = "Model name.", Required = true };
        var historyAlias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var history = new Command("history", "Every move of an alias, newest first.") { historyName, historyAlias };
        history.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(historyName))}/aliases/{Uri.EscapeDataString(parse.GetRequiredValue(historyAlias))}/history";
            var changes = await api.GetAsync<List<ModelAliasChange>>(path, ct);
            foreach (var c in changes)
            {
                Console.WriteLine($"{c.ChangedAt:u}  {c.Alias} → v{c.Version}{(c.PreviousVersion is { } p ? $" (was v{p})" : " (created)")}{CanaryOptions.Describe(c)}");
            }

            return ExitCodes.Succeeded;
        });

        var listJson = new Option<bool>("--json") { Description = "Machine-readable output." };
        var list = new Command("list", "List registered model versions.") { listJson };
        list.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var models = await api.GetAsync<List<ModelVersionInfo>>("api/models", ct);
            if (parse.GetValue(listJson))
            {
                Console.WriteLine(JsonSerializer.Serialize(models, ApiClient.Json));
            }
            else
            {
                foreach (var m in models)
                {
                    Console.WriteLine($"{m.Name,-24} v{m.Version,-4} {m.Sha256[..12]}  {string.Join(",", m.Aliases)}");
                }
            }

            return ExitCodes.Succeeded;
        });

        return new Command("models", "Register and list models, build reference profiles.") { register, setAlias, rollback, history, list, DriftCommand.CreateProfile() };
    }
}
