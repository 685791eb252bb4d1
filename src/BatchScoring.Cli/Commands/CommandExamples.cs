using System.CommandLine;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// The "Examples:" block of every verb's help, kept in one table so that the command tree test can check that each
/// verb has one and docs/cli.md can show the same lines.
/// </summary>
internal static class CommandExamples
{
    public const string Heading = "Examples:";

    public static IReadOnlyDictionary<string, string[]> ByVerb { get; } = new Dictionary<string, string[]>
    {
        ["demo"] = ["batchscore demo", "batchscore demo --output-dir /tmp/demo --rows 50000"],
        ["score"] =
        [
            "batchscore score --model-file model.onnx --input data.parquet --output-parquet scored.parquet --key-column customer_id",
            "batchscore score --model-file model.onnx --input data.csv --output-parquet scored.parquet --features f0,f1,f2 --json",
        ],
        ["generate"] = ["batchscore generate --output-dir samples --rows 100000", "batchscore generate --output-dir samples --rows 10000 --features 16 --json"],
        ["serve"] =
        [
            "ConnectionStrings__Postgres='Host=localhost;Username=scoring;Database=scoring' ConnectionStrings__RabbitMq=amqp://guest:guest@localhost:5672/ batchscore serve --migrate",
            "batchscore serve --roles worker",
        ],
        ["migrate"] = ["batchscore migrate", "batchscore migrate --status --json"],
        ["completion"] = ["source <(batchscore completion bash)", "batchscore completion zsh > \"${fpath[1]}/_batchscore\""],
        ["models register"] = ["batchscore models register --model churn --model-file churn.onnx", "batchscore models register --model churn --model-file churn.onnx --json"],
        ["models list"] = ["batchscore models list", "batchscore models list --json"],
        ["models history"] = ["batchscore models history --model churn --alias production"],
        ["models rollback"] = ["batchscore models rollback --model churn --alias production"],
        ["models archive"] = ["batchscore models archive --model churn --version 3"],
        ["models unarchive"] = ["batchscore models unarchive --model churn --version 3"],
        ["models delete"] = ["batchscore models delete --model churn --version 3"],
        ["models profile"] = ["batchscore models profile --model churn --version production --input /data/reference.parquet --key-column customer_id"],
        ["jobs status"] = ["batchscore jobs status 3f2c9a4e-0d1b-4c2e-9a57-2b8f5e0c7d11", "batchscore jobs status 3f2c9a4e-0d1b-4c2e-9a57-2b8f5e0c7d11 --wait --timeout 30m --json"],
        ["jobs list"] = ["batchscore jobs list --state running", "batchscore jobs list --model churn --limit 5 --json"],
        ["jobs cancel"] = ["batchscore jobs cancel 3f2c9a4e-0d1b-4c2e-9a57-2b8f5e0c7d11"],
        ["jobs retry"] = ["batchscore jobs retry 3f2c9a4e-0d1b-4c2e-9a57-2b8f5e0c7d11 --json"],
        ["drift audit"] = ["batchscore drift audit --model churn", "batchscore drift audit --model churn --version production --window 6h --json"],
        ["drift reports"] = ["batchscore drift reports --model churn --limit 5", "batchscore drift reports --model churn --output-html drift.html"],
        ["labels ingest"] = ["batchscore labels ingest --model churn --input labels.parquet --key-column customer_id --label-column churned"],
        ["performance report"] = ["batchscore performance report --model churn --window 7d"],
        ["schedules create"] =
        [
            "batchscore schedules create --schedule nightly-churn --cron \"0 2 * * *\" --time-zone Europe/Paris --model churn@production "
            + "--input \"data/{date:yyyy-MM-dd}.parquet\" --key-column customer_id --output-table scoring.results_churn",
        ],
        ["schedules list"] = ["batchscore schedules list", "batchscore schedules list --json"],
        ["schedules pause"] = ["batchscore schedules pause --schedule nightly-churn"],
        ["schedules resume"] = ["batchscore schedules resume --schedule nightly-churn"],
        ["schedules delete"] = ["batchscore schedules delete --schedule nightly-churn"],
        ["schedules run-now"] = ["batchscore schedules run-now --schedule nightly-churn --at 2026-03-01T02:00:00+01:00 --wait"],
        ["schedules runs"] = ["batchscore schedules runs --schedule nightly-churn --json"],
    };

    /// <summary>Appends the verb's examples to the description of every leaf that does not carry its own block.</summary>
    public static void Apply(Command command, string path = "")
    {
        foreach (var sub in command.Subcommands)
        {
            var subPath = path.Length == 0 ? sub.Name : $"{path} {sub.Name}";
            if (sub.Subcommands.Count > 0)
            {
                Apply(sub, subPath);
            }
            else if (ByVerb.TryGetValue(subPath, out var examples) && sub.Description?.Contains(Heading, StringComparison.Ordinal) != true)
            {
                sub.Description += $"\n\n{Heading}\n" + string.Join("\n", examples.Select(e => "  " + e));
            }
        }
    }
}
