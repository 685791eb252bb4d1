using System.Text.Json;
using System.Text.Json.Serialization;
using BatchScoring.Contracts;

namespace BatchScoring.Cli.Commands;

/// <summary>
/// Serialization code generated at build time for the job documents (the human job summary, `jobs list`): the
/// reflection serializer builds and JIT-compiles its accessors in every process, which a short-lived command pays
/// on each run (docs/cli.md, "Start-up"). Every other type falls back to reflection. Submit, status and `--wait`
/// avoid even this metadata: <see cref="JobDocument"/>, <see cref="SubmitJobJson"/> (ADR-011).
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(JobStatus))]
[JsonSerializable(typeof(SubmitScoringJob))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
