using System.CommandLine;
using BatchScoring.Cli.Commands;

var root = new RootCommand("batchscore: asynchronous batch scoring of ONNX models over RabbitMQ and PostgreSQL.")
{
    DemoCommand.Create(),
    ScoreCommand.Create(),
    GenerateCommand.Create(),
    ServeCommand.Create(),
    MigrateCommand.Create(),
    ModelsCommand.Create(),
    JobsCommand.Create(),
    DriftCommand.Create(),
    BenchCommand.Create(),
};
root.Options.Add(ApiClient.ApiOption);
root.Options.Add(ApiClient.KeyOption);
return await root.Parse(args).InvokeAsync();
