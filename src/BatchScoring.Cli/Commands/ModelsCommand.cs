using System.CommandLine;
using System.Text.Json;
using BatchScoring.Cli.Errors;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

public static class ModelsCommand
{
    public static Command Create()
    {
        var name = CliOptions.ModelName();
        var file = new Option<FileInfo>("--model-file") { Description = "ONNX file.", Required = true }.WithLegacy("--file");
        var json = new Option<bool>("--json") { Description = "Machine-readable output." };
        var register = new Command(
            "register",
            "Upload an ONNX file as the model's next version; the same bytes again give the existing version.")
        {
            name, file, json,
        };
        register.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = parse.GetRequiredValue(file);
            if (!path.Exists)
            {
                return ErrorReporter.Print(ExitCodes.Usage, $"model file '{path.FullName}' does not exist.");
            }

            var info = await api.PostFileAsync<ModelRegistration>($"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(name))}/versions", path.FullName, ct);
            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(info, ApiClient.Json)
                : info.Existing ? $"already registered as {info.Name}@{info.Version} sha256 {info.Sha256}{(info.ArchivedAt is null ? "" : " (archived)")}"
                : $"{info.Name} v{info.Version} sha256 {info.Sha256}");
            return ExitCodes.Succeeded;
        });

        var aliasName = CliOptions.ModelName();
        var alias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var version = new Option<int>("--version") { Description = "Version the alias points at.", Required = true };
        var aliasForce = ModelLifecycleCommands.ForceOption();
        var aliasJson = new Option<bool>("--json") { Description = "Machine-readable output (a refused move prints the signature diff)." };
        var (canary, percent) = CanaryOptions.Create();
        var setAlias = new Command(
            "alias",
            "Point an alias at a version (promote / roll back); refused when its signature is incompatible with the current target's, unless --force; "
            + "with --canary and --percent, send that share of score request rows to a canary version.")
        {
            aliasName, alias, version, aliasForce, aliasJson, canary, percent,
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
            var json = parse.GetValue(aliasJson);
            var body = CanaryOptions.Body(parse, parse.GetValue(version), parse.GetValue(aliasForce), canary, percent);
            var info = await ModelLifecycleCommands.MoveAsync(json, () => api.PutJsonAsync<ModelVersionInfo>(path, body, ct));
            if (json)
            {
                ModelLifecycleCommands.PrintMove(parse.GetRequiredValue(alias), info, json);
            }
            else
            {
                Console.Error.WriteLine($"{parse.GetRequiredValue(alias)} → {info.Name} v{info.Version}{CanaryOptions.Describe(parse, canary, percent)}");
            }
            return ExitCodes.Succeeded;
        });

        var rollbackName = CliOptions.ModelName();
        var rollbackAlias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var rollbackForce = ModelLifecycleCommands.ForceOption();
        var rollbackJson = new Option<bool>("--json") { Description = "Machine-readable output (a refused rollback prints the signature diff)." };
        var rollback = new Command(
            "rollback",
            "Undo an alias's last move: point it back at the version it had before (same signature check as alias).")
        {
            rollbackName, rollbackAlias, rollbackForce, rollbackJson,
        };
        rollback.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(rollbackName))}/aliases/{Uri.EscapeDataString(parse.GetRequiredValue(rollbackAlias))}/rollback";
            var info = await ModelLifecycleCommands.MoveAsync(
                parse.GetValue(rollbackJson), () => api.PostJsonAsync<ModelVersionInfo>(path, new { force = parse.GetValue(rollbackForce) }, ct));
            ModelLifecycleCommands.PrintMove(parse.GetRequiredValue(rollbackAlias), info, parse.GetValue(rollbackJson));
            return ExitCodes.Succeeded;
        });

        var historyName = CliOptions.ModelName();
        var historyAlias = new Option<string>("--alias") { Description = "Alias, e.g. production.", Required = true };
        var historyJson = new Option<bool>("--json") { Description = "Machine-readable output." };
        var history = new Command("history", "Every move of an alias, newest first: when, who, from, to, forced.") { historyName, historyAlias, historyJson };
        history.SetAction(async (parse, ct) =>
        {
            using var api = ApiClient.From(parse);
            var path = $"api/models/{Uri.EscapeDataString(parse.GetRequiredValue(historyName))}/aliases/{Uri.EscapeDataString(parse.GetRequiredValue(historyAlias))}/history";
            var changes = await api.GetAsync<List<ModelAliasChange>>(path, ct);
            if (parse.GetValue(historyJson))
            {
                Console.WriteLine(JsonSerializer.Serialize(changes, ApiClient.Json));
                return ExitCodes.Succeeded;
            }

            foreach (var c in changes)
            {
                Console.WriteLine(
                    $"{c.ChangedAt:u}  {c.Alias} → v{c.Version}{(c.PreviousVersion is { } p ? $" (was v{p})" : " (created)")}{CanaryOptions.Describe(c)}"
                    + $"{(c.ChangedBy is { } by ? $" by {by}" : "")}{(c.Forced ? " FORCED past an incompatible signature" : "")}");
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
                    Console.WriteLine(ModelLifecycleCommands.Row(m));
                }
            }

            return ExitCodes.Succeeded;
        });

        return new Command("models", "Register and list models, move aliases, archive and delete versions, build reference profiles.")
        {
            register, setAlias, rollback, history, list, ModelLifecycleCommands.Archive(), ModelLifecycleCommands.Unarchive(), ModelLifecycleCommands.Delete(), DriftCommand.CreateProfile(),
        };
    }
}
