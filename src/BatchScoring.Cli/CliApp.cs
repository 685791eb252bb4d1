using System.CommandLine;
using BatchScoring.Cli.Commands;

namespace BatchScoring.Cli;

/// <summary>The <c>batchscore</c> command tree (Program.cs runs it; the command tree test walks it).</summary>
public static class CliApp
{
    public const string Description = "batchscore: asynchronous batch scoring of ONNX models over RabbitMQ and PostgreSQL.";

    /// <param name="args">The command line: a completion request (<c>[suggest]</c>) gets a tree without legacy aliases.</param>
    public static RootCommand CreateRoot(IReadOnlyList<string>? args = null)
    {
        var root = new RootCommand(Description)
        {
            DemoCommand.Create(),
            ScoreCommand.Create(),
            GenerateCommand.Create(),
            ServeCommand.Create(),
            MigrateCommand.Create(),
            ModelsCommand.Create(),
            JobsCommand.Create(),
            DriftCommand.Create(),
            LabelsCommand.Create(),
            LabelsCommand.CreatePerformance(),
            SchedulesCommand.Create(),
            CompletionCommand.Create(),
        };
        root.Options.Add(ApiClient.ApiOption);
        root.Options.Add(ApiClient.KeyOption);
        root.Options.Add(CliOptions.Verbose);
        CommandExamples.Apply(root);
        LegacyAliases.HideInHelp(root);
        if (args is [var first, ..] && first.StartsWith("[suggest", StringComparison.Ordinal))
        {
            LegacyAliases.Hide(root);
        }

        return root;
    }
}
