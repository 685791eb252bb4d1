using System.Globalization;
using System.Text.Json;
using BatchScoring.Application;
using BatchScoring.Cli.Hosting;
using BatchScoring.Contracts;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.OnnxWriter;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace BatchScoring.IntegrationTests.Requests;

/// <summary>
/// Request mode end to end: plain JSON published by a raw AMQP client (no MassTransit) to score-requests, dynamic
/// batching in the worker, results in scoring.request_results_&lt;model&gt;, answers on the client's reply queue.
/// </summary>
public sealed class RequestModeTests(ServerFixture servers)
{
    private const int Features = 8;
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(20);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Raw_json_request_from_a_plain_amqp_client_is_scored_and_written()
    {
        await using var host = await StartAsync("req-raw");
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        var rows = Rows("c-", 5, "f_", seed: 1);
        await client.PublishAsync(Queue(host), RequestJson("req-1", "churn", rows, replyTo: client.ReplyQueue, correlationId: "order-55123", shuffle: true), Ct);

        var reply = (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0];
        Assert.Equal("application/json", reply.ContentType);
        Assert.Equal("order-55123", reply.CorrelationId);
        var body = reply.Body;
        Assert.False(body.TryGetProperty("messageType", out _), "the reply must be plain JSON, not an envelope");
        Assert.Equal("req-1", body.GetProperty("requestId").GetString());
        Assert.Equal("order-55123", body.GetProperty("correlationId").GetString());
        Assert.Equal(ScoreRequestOutcome.Scored, body.GetProperty("outcome").GetString());
        Assert.Equal("churn", body.GetProperty("model").GetProperty("name").GetString());
        Assert.Equal(1, body.GetProperty("model").GetProperty("version").GetInt32());
        AssertScoresMatch(mlp, rows, body);

        var written = await ReadResultsAsync(host, "request_results_churn", "score");
        Assert.Equal(rows.Count, written.Count);
        foreach (var (key, x) in rows)
        {
            var row = written[key];
            Assert.Equal("req-1", row.RequestId);
            Assert.Equal("churn", row.Model);
            Assert.Equal(1, row.Version);
            Assert.Equal(MlpReference.Forward(mlp, x)[0], row.Score, 1e-4f);
        }
    }

    [Fact]
    public async Task Requests_for_different_models_in_flight_together_never_mix()
    {
        await using var host = await StartAsync("req-mix", new() { ["BatchScoring:Requests:MaxQueueDelayMs"] = "50" });
        var alpha = await RegisterMlpAsync(host, "alpha", "f_", seed: 5);
        var beta = await RegisterMlpAsync(host, "beta", "x_", seed: 8, output: "risk", hidden: 6);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        var sent = new Dictionary<string, (string Model, List<(string Key, float[] X)> Rows)>();
        for (var i = 0; i < 40; i++)
        {
            var model = i % 2 == 0 ? "alpha" : "beta";
            var rows = Rows($"{model}-{i}-", 3, model == "alpha" ? "f_" : "x_", seed: 100 + i);
            sent[$"mix-{i}"] = (model, rows);
            await client.PublishAsync(Queue(host), RequestJson($"mix-{i}", model, rows, replyTo: client.ReplyQueue), Ct);
        }

        foreach (var reply in await client.ReceiveAsync(40, ReplyTimeout, Ct))
        {
            var (model, rows) = sent[reply.Body.GetProperty("requestId").GetString()!];
            Assert.Equal(ScoreRequestOutcome.Scored, reply.Body.GetProperty("outcome").GetString());
            Assert.Equal(model, reply.Body.GetProperty("model").GetProperty("name").GetString());
            AssertScoresMatch(model == "alpha" ? alpha : beta, rows, reply.Body, model == "alpha" ? "score" : "risk");
        }

        // Each model's table holds exactly its own requests' rows: no batch carried rows of the other model.
        foreach (var (model, output) in new[] { ("alpha", "score"), ("beta", "risk") })
        {
            var written = await ReadResultsAsync(host, $"request_results_{model}", output);
            var expected = sent.Where(s => s.Value.Model == model).SelectMany(s => s.Value.Rows.Select(r => (s.Key, r.Key))).ToHashSet();
            Assert.Equal(expected, written.Select(w => (w.Value.RequestId, w.Key)).ToHashSet());
            Assert.All(written.Values, w => Assert.Equal(model, w.Model));
        }
    }

    [Fact]
    public async Task Bad_requests_beside_good_ones_are_rejected_and_moved_to_the_error_queue()
    {
        await using var host = await StartAsync("req-bad", new() { ["BatchScoring:Requests:MaxQueueDelayMs"] = "50" });
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = Queue(host);
        var good = Enumerable.Range(0, 6).Select(i => ($"good-{i}", Rows($"g{i}-", 4, "f_", seed: 20 + i))).ToList();
        var rejectedBefore = await FinishedAsync(host, ScoreRequestOutcome.Rejected);
        var scoredBefore = await FinishedAsync(host, ScoreRequestOutcome.Scored);

        await client.PublishAsync(queue, RequestJson("good-0", "churn", good[0].Item2, replyTo: client.ReplyQueue), Ct);
        await client.PublishAsync(queue, "{\"requestId\": \"broken\", \"model\": {\"name\": \"churn\"", Ct, replyTo: client.ReplyQueue); // invalid JSON
        await client.PublishAsync(queue, RequestJson("good-1", "churn", good[1].Item2, replyTo: client.ReplyQueue), Ct);
        await client.PublishAsync(queue, RequestJson("unknown-model", "nope", good[2].Item2, replyTo: client.ReplyQueue), Ct);
        await client.PublishAsync(queue, RequestJson("good-2", "churn", good[2].Item2, replyTo: client.ReplyQueue), Ct);
        var typed = RequestJson("wrong-type", "churn", good[3].Item2, replyTo: client.ReplyQueue).Replace("\"f_003\":", "\"f_003\":\"abc\",\"ignored\":", StringComparison.Ordinal);
        await client.PublishAsync(queue, typed, Ct);
        await client.PublishAsync(queue, RequestJson("good-3", "churn", good[3].Item2, replyTo: client.ReplyQueue), Ct);
        await client.PublishAsync(queue, $"{{\"requestId\":\"schema\",\"model\":{{\"name\":\"churn\"}},\"rows\":\"not-an-array\",\"replyTo\":\"{client.ReplyQueue}\"}}", Ct);
        await client.PublishAsync(queue, RequestJson("missing-feature", "churn", good[4].Item2, replyTo: client.ReplyQueue).Replace("\"f_005\":", "\"other\":", StringComparison.Ordinal), Ct);
        for (var i = 4; i < 6; i++)
        {
            await client.PublishAsync(queue, RequestJson($"good-{i}", "churn", good[i].Item2, replyTo: client.ReplyQueue), Ct);
        }

        // 6 good + 5 rejected: even the body that is not JSON is answered, through its AMQP reply_to property.
        var replies = (await client.ReceiveAsync(11, ReplyTimeout, Ct)).ToDictionary(r => r.Body.GetProperty("requestId").GetString()!);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(ScoreRequestOutcome.Scored, replies[$"good-{i}"].Body.GetProperty("outcome").GetString());
            AssertScoresMatch(mlp, good[i].Item2, replies[$"good-{i}"].Body);
        }

        foreach (var (id, text) in new[]
        {
            ("broken", "the body is not valid JSON"),
            ("unknown-model", "Model 'nope' is not registered"),
            ("wrong-type", "feature 'f_003' must be a number, got string \"abc\""),
            ("schema", "does not match the ScoreRequest schema: rows must be an array of {key, features} objects, found a string"),
            ("missing-feature", "feature 'f_005' is missing"),
        })
        {
            var body = replies[id].Body;
            Assert.Equal(ScoreRequestOutcome.Rejected, body.GetProperty("outcome").GetString());
            Assert.Contains(text, body.GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Empty(body.GetProperty("scores").EnumerateArray());
        }

        var errors = await client.DrainAsync(queue + "_error", atLeast: 5, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(5, errors.Count);
        Assert.Contains(errors, e => e.Body.Contains("\"broken\"", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Body.Contains("unknown-model", StringComparison.Ordinal) && e.FaultMessage!.Contains("not registered", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Body.Contains("wrong-type", StringComparison.Ordinal) && e.FaultMessage!.Contains("f_003", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Body.Contains("not-an-array", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Body.Contains("missing-feature", StringComparison.Ordinal));

        var written = await ReadResultsAsync(host, "request_results_churn", "score");
        Assert.Equal(good.Sum(g => g.Item2.Count), written.Count);
        Assert.All(written.Values, w => Assert.StartsWith("good-", w.RequestId, StringComparison.Ordinal));

        // Operators see the outcomes in /metrics (other tests in this process may add to the same counters).
        await WaitForFinishedAsync(host, ScoreRequestOutcome.Rejected, rejectedBefore + 5);
        await WaitForFinishedAsync(host, ScoreRequestOutcome.Scored, scoredBefore + 6);
    }

    /// <summary>The counter is raised after the acknowledgement, which may come just after the reply.</summary>
    private static Task WaitForFinishedAsync(ServiceTestHost host, string outcome, double atLeast) =>
        Poll.UntilAsync(
            async () => await FinishedAsync(host, outcome) >= atLeast, TimeSpan.FromSeconds(5), $"batchscoring_requests_total{{outcome=\"{outcome}\"}} ≥ {atLeast} on /metrics", Ct);

    private static Task<double> FinishedAsync(ServiceTestHost host, string outcome) =>
        ScrapedMetrics.ValueAsync(host.Client, $"batchscoring_requests_total{{outcome=\"{outcome}\"}}", Ct);

    [Fact]
    public async Task Poison_rows_fail_alone_and_an_expired_deadline_times_out_without_writing()
    {
        await using var host = await StartAsync("req-deadline");
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        var expired = RequestJson("late", "churn", Rows("l-", 2, "f_", seed: 2), replyTo: client.ReplyQueue, deadline: DateTimeOffset.UtcNow.AddMinutes(-1));
        await client.PublishAsync(Queue(host), expired, Ct);
        var rows = Rows("p-", 4, "f_", seed: 4);
        var poison = RequestJson("poison", "churn", rows, replyTo: client.ReplyQueue, deadline: DateTimeOffset.UtcNow.AddMinutes(1))
            .ReplaceFirst("\"f_002\":", "\"f_002\":\"NaN\",\"x\":"); // only the first row's f_002 is NaN
        await client.PublishAsync(Queue(host), poison, Ct);

        var replies = (await client.ReceiveAsync(2, ReplyTimeout, Ct)).ToDictionary(r => r.Body.GetProperty("requestId").GetString()!);
        var late = replies["late"].Body;
        Assert.Equal(ScoreRequestOutcome.Timeout, late.GetProperty("outcome").GetString());
        Assert.Contains("deadline", late.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(late.GetProperty("scores").EnumerateArray());

        var partial = replies["poison"].Body;
        Assert.Equal(ScoreRequestOutcome.PartiallyScored, partial.GetProperty("outcome").GetString());
        var failure = Assert.Single(partial.GetProperty("failures").EnumerateArray());
        Assert.Equal("p-0", failure.GetProperty("key").GetString());
        Assert.Equal("f_002", failure.GetProperty("column").GetString());
        AssertScoresMatch(mlp, rows.Skip(1).ToList(), partial);

        var written = await ReadResultsAsync(host, "request_results_churn", "score");
        Assert.Equal(["p-1", "p-2", "p-3"], written.Keys.Order());
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var failed = db.CreateCommand("SELECT request_id, row_key, row_number, column_name, reason, row_key_json::text FROM scoring.failed_rows");
        await using var reader = await failed.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        Assert.Equal(("poison", "p-0", 0L, "f_002"), (reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3)));
        Assert.Contains("NaN", reader.GetString(4), StringComparison.Ordinal);
        Assert.Equal("\"p-0\"", reader.GetString(5)); // request keys are text by contract: a JSON string
        Assert.False(await reader.ReadAsync(Ct));
    }

    [Fact]
    public async Task Reply_goes_to_the_amqp_reply_to_property_and_dotnet_producers_may_send_the_contract_through_masstransit()
    {
        await using var host = await StartAsync("req-reply");
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        // 1. No replyTo field: the AMQP reply_to / correlation_id properties are used.
        var rows = Rows("a-", 2, "f_", seed: 30);
        await client.PublishAsync(Queue(host), RequestJson("amqp-props", "churn", rows), Ct, replyTo: client.ReplyQueue, correlationId: "corr-7");
        var reply = (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0];
        Assert.Equal("amqp-props", reply.Body.GetProperty("requestId").GetString());
        Assert.Equal("corr-7", reply.CorrelationId);
        Assert.Equal("corr-7", reply.Body.GetProperty("correlationId").GetString());
        AssertScoresMatch(mlp, rows, reply.Body);

        // 2. A .NET producer sends the ScoreRequest contract in a MassTransit envelope; the reply to a plain queue is still plain JSON.
        var bus = host.Services.GetRequiredService<IBus>();
        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{Queue(host)}"));
        var dotnetRows = Rows("n-", 3, "f_", seed: 31);
        await endpoint.Send(
            new ScoreRequest
            {
                RequestId = "dotnet",
                Model = new ScoreRequestModel { Name = "churn", Version = "1" },
                Rows = dotnetRows.Select(r => new ScoreRequestRow
                {
                    Key = r.Key,
                    Features = r.X.Select((v, i) => (Name: $"f_{i:D3}", Value: (object?)v)).ToDictionary(p => p.Name, p => p.Value),
                }).ToList(),
                ReplyTo = client.ReplyQueue,
            },
            Ct);
        reply = (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0];
        Assert.Equal("dotnet", reply.Body.GetProperty("requestId").GetString());
        Assert.Equal(ScoreRequestOutcome.Scored, reply.Body.GetProperty("outcome").GetString());
        AssertScoresMatch(mlp, dotnetRows, reply.Body);
    }

    [Fact]
    public async Task Masstransit_services_receive_the_completed_event_and_request_clients_get_their_response()
    {
        await using var host = await StartAsync("req-mt");
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        var bus = host.Services.GetRequiredService<IBus>();

        // A .NET service subscribed to the event the usual MassTransit way (exchange per message type).
        var events = System.Threading.Channels.Channel.CreateUnbounded<ScoreRequestCompleted>();
        var listener = bus.ConnectReceiveEndpoint(host.Settings["BatchScoring:QueuePrefix"] + "completed-listener", e =>
        {
            if (e is IRabbitMqReceiveEndpointConfigurator rabbit)
            {
                rabbit.AutoDelete = true;
                rabbit.Durable = false;
            }

            e.Handler<ScoreRequestCompleted>(context => events.Writer.WriteAsync(context.Message).AsTask());
        });
        await listener.Ready;
        try
        {
            var rows = Rows("m-", 3, "f_", seed: 60);
            var client = bus.CreateRequestClient<ScoreRequest>(new Uri($"queue:{Queue(host)}"), RequestTimeout.After(s: 20));
            var response = await client.GetResponse<ScoreRequestCompleted>(
                new ScoreRequest
                {
                    RequestId = "mt-request",
                    Model = new ScoreRequestModel { Name = "churn" },
                    Rows = rows.Select(r => new ScoreRequestRow
                    {
                        Key = r.Key,
                        Features = r.X.Select((v, i) => (Name: $"f_{i:D3}", Value: (object?)v)).ToDictionary(p => p.Name, p => p.Value),
                    }).ToList(),
                    CorrelationId = "mt-corr",
                },
                Ct);
            AssertCompleted(response.Message);

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            wait.CancelAfter(ReplyTimeout);
            ScoreRequestCompleted published;
            do
            {
                published = await events.Reader.ReadAsync(wait.Token);
            }
            while (published.RequestId != "mt-request");

            AssertCompleted(published);

            void AssertCompleted(ScoreRequestCompleted completed)
            {
                Assert.Equal("mt-request", completed.RequestId);
                Assert.Equal("mt-corr", completed.CorrelationId);
                Assert.Equal(ScoreRequestOutcome.Scored, completed.Outcome);
                Assert.Equal(new ScoredModel("churn", 1), completed.Model);
                var scores = completed.Scores.ToDictionary(s => s.Key, s => s.Outputs["score"] switch
                {
                    JsonElement e => e.GetSingle(),
                    var value => Convert.ToSingle(value, CultureInfo.InvariantCulture),
                });
                Assert.Equal(rows.Count, scores.Count);
                foreach (var (key, x) in rows)
                {
                    Assert.Equal(MlpReference.Forward(mlp, x)[0], scores[key], 1e-4f);
                }
            }
        }
        finally
        {
            await listener.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task A_request_whose_rows_cannot_be_written_is_retried_then_moved_to_the_error_queue_and_the_worker_keeps_going()
    {
        await using var host = await StartAsync("req-dbfail");
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = Queue(host);

        await client.PublishAsync(queue, RequestJson("before", "churn", Rows("b-", 2, "f_", seed: 1), replyTo: client.ReplyQueue), Ct);
        Assert.Equal(ScoreRequestOutcome.Scored, (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0].Body.GetProperty("outcome").GetString());

        // The results table starts refusing new rows (as a full disk or a broken table would): every write fails.
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using (var refuse = db.CreateCommand("ALTER TABLE scoring.request_results_churn ADD CONSTRAINT refuse_rows CHECK (false) NOT VALID"))
        {
            await refuse.ExecuteNonQueryAsync(Ct);
        }

        var failedBefore = await FinishedAsync(host, ScoringMetrics.RequestFailedOutcome);
        await client.PublishAsync(queue, RequestJson("unwritable", "churn", Rows("u-", 3, "f_", seed: 2), replyTo: client.ReplyQueue), Ct);
        var errors = await client.DrainAsync(queue + "_error", atLeast: 1, TimeSpan.FromSeconds(15), Ct);
        var (body, fault) = Assert.Single(errors);
        Assert.Contains("\"unwritable\"", body, StringComparison.Ordinal);
        Assert.Contains("failed 3 times", fault, StringComparison.Ordinal);
        Assert.Contains("refuse_rows", fault, StringComparison.Ordinal);
        await WaitForFinishedAsync(host, ScoringMetrics.RequestFailedOutcome, failedBefore + 1);

        // Once the table accepts rows again, the same worker scores new requests.
        await using (var accept = db.CreateCommand("ALTER TABLE scoring.request_results_churn DROP CONSTRAINT refuse_rows"))
        {
            await accept.ExecuteNonQueryAsync(Ct);
        }

        var rows = Rows("a-", 2, "f_", seed: 3);
        await client.PublishAsync(queue, RequestJson("after", "churn", rows, replyTo: client.ReplyQueue), Ct);
        var reply = (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0].Body;
        Assert.Equal("after", reply.GetProperty("requestId").GetString());
        AssertScoresMatch(mlp, rows, reply);
        Assert.Equal(["a-0", "a-1", "b-0", "b-1"], (await ReadResultsAsync(host, "request_results_churn", "score")).Keys.Order());
    }

    [Fact]
    public async Task A_model_with_string_and_integer_inputs_is_fed_by_name_and_typed_features_are_checked()
    {
        await using var host = await StartAsync("req-typed", new() { ["BatchScoring:Requests:MaxQueueDelayMs"] = "50" });
        var model = SampleModels.PerColumnModel(seed: 11);
        await host.RegisterModelAsync("tenure", model.Bytes, Ct);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        var rows = new (string Key, double Tenure, double Monthly, long Services, string Contract)[]
        {
            ("t-1", 3, 71.5, 2, "month-to-month"), ("t-2", 40, 19.9, 5, "two_year"), ("t-3", 12, 55, 0, "one_year"),
        };
        string Json(string id, IEnumerable<(string Key, double Tenure, double Monthly, long Services, string Contract)> items, string services = "{0}") =>
            JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["requestId"] = id,
                ["model"] = new Dictionary<string, object?> { ["name"] = "tenure" },
                ["replyTo"] = client.ReplyQueue,
                ["rows"] = items.Select(r => new Dictionary<string, object?>
                {
                    ["key"] = r.Key,
                    ["features"] = new Dictionary<string, object?>
                    {
                        ["contract"] = r.Contract, ["num_services"] = services == "{0}" ? r.Services : services, ["monthly_charges"] = r.Monthly, ["tenure"] = r.Tenure,
                    },
                }).ToList(),
            });

        await client.PublishAsync(Queue(host), Json("typed-a", rows.Take(2)), Ct);
        await client.PublishAsync(Queue(host), Json("typed-bad", rows.Take(1), services: "three"), Ct);
        await client.PublishAsync(Queue(host), Json("typed-b", rows.Skip(2)), Ct);

        var replies = (await client.ReceiveAsync(3, ReplyTimeout, Ct)).ToDictionary(r => r.Body.GetProperty("requestId").GetString()!);
        Assert.Equal(ScoreRequestOutcome.Rejected, replies["typed-bad"].Body.GetProperty("outcome").GetString());
        Assert.Contains("feature 'num_services' must be an integer, got string \"three\"", replies["typed-bad"].Body.GetProperty("error").GetString(), StringComparison.Ordinal);
        var scores = replies["typed-a"].Body.GetProperty("scores").EnumerateArray().Concat(replies["typed-b"].Body.GetProperty("scores").EnumerateArray())
            .ToDictionary(e => e.GetProperty("key").GetString()!, e => e.GetProperty("outputs").GetProperty("score").GetDouble());
        Assert.Equal(3, scores.Count);
        foreach (var (key, tenure, monthly, services, contract) in rows)
        {
            // Independent computation: logistic regression over [tenure, monthly, services, one-hot(contract)].
            var features = new List<double> { tenure, monthly, services };
            features.AddRange(model.Categories.Select(c => c == contract ? 1.0 : 0.0));
            var logit = model.Bias + features.Select((x, i) => model.Weights[i] * x).Sum();
            Assert.Equal(1 / (1 + Math.Exp(-logit)), scores[key], 1e-5);
        }
    }

    [Fact]
    public async Task A_worker_that_stops_answers_the_requests_it_holds_and_the_next_worker_takes_over()
    {
        // The model store outlives the first worker (a test host deletes its own work directory).
        var models = Directory.CreateTempSubdirectory("bs-req-stop-models-").FullName;
        var slowBatches = new Dictionary<string, string>
        {
            ["BatchScoring:Requests:MaxQueueDelayMs"] = "1500",
            ["BatchScoring:ModelStorePath"] = models,
        };
        var first = await StartAsync("req-stop", slowBatches);
        var mlp = await RegisterMlpAsync(first, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = Queue(first);

        // Held in the first worker's batcher (unacknowledged) when it is told to stop.
        var held = Enumerable.Range(0, 5).ToDictionary(i => $"held-{i}", i => Rows($"h{i}-", 2, "f_", seed: 70 + i));
        foreach (var (id, rows) in held)
        {
            await client.PublishAsync(queue, RequestJson(id, "churn", rows, replyTo: client.ReplyQueue), Ct);
        }

        await client.WaitUntilDeliveredAsync(queue, TimeSpan.FromSeconds(10), Ct);
        var shared = new Dictionary<string, string>(slowBatches)
        {
            ["ConnectionStrings:Postgres"] = first.Settings["ConnectionStrings:Postgres"],
            ["BatchScoring:QueuePrefix"] = first.Settings["BatchScoring:QueuePrefix"],
        };
        await first.DisposeAsync();

        var replies = (await client.ReceiveAsync(5, ReplyTimeout, Ct)).ToDictionary(r => r.Body.GetProperty("requestId").GetString()!);
        Assert.Equal(held.Keys.Order(), replies.Keys.Order());
        foreach (var (id, rows) in held)
        {
            AssertScoresMatch(mlp, rows, replies[id].Body);
        }

        await using var second = await StartAsync("req-stop-2", shared);
        var after = Rows("n-", 2, "f_", seed: 90);
        await client.PublishAsync(queue, RequestJson("after", "churn", after, replyTo: client.ReplyQueue), Ct);
        var reply = Assert.Single(await client.ReceiveAsync(1, ReplyTimeout, Ct));
        Assert.Equal("after", reply.Body.GetProperty("requestId").GetString());
        AssertScoresMatch(mlp, after, reply.Body);

        // Every row once: nothing was lost with the first worker, nothing was delivered twice to the second.
        var written = await ReadResultsAsync(second, "request_results_churn", "score");
        Assert.Equal(held.Values.Sum(r => r.Count) + after.Count, written.Count);
        Directory.Delete(models, recursive: true);
    }

    [Fact]
    public async Task A_redelivered_request_whose_rows_were_committed_is_answered_from_the_tables_not_written_again()
    {
        var models = Directory.CreateTempSubdirectory("bs-req-redeliver-models-").FullName;
        var first = await StartAsync("req-redeliver", new() { ["BatchScoring:ModelStorePath"] = models });
        var mlp = await RegisterMlpAsync(first, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = Queue(first);
        var rows = Rows("d-", 4, "f_", seed: 8);
        var json = RequestJson("again", "churn", rows, replyTo: client.ReplyQueue).ReplaceFirst("\"f_002\":", "\"f_002\":\"NaN\",\"x\":"); // row d-0 fails
        await client.PublishAsync(queue, json, Ct);
        var original = Assert.Single(await client.ReceiveAsync(1, ReplyTimeout, Ct)).Body;
        Assert.Equal(ScoreRequestOutcome.PartiallyScored, original.GetProperty("outcome").GetString());
        var shared = new Dictionary<string, string>
        {
            ["ConnectionStrings:Postgres"] = first.Settings["ConnectionStrings:Postgres"],
            ["BatchScoring:QueuePrefix"] = first.Settings["BatchScoring:QueuePrefix"],
            ["BatchScoring:ModelStorePath"] = models,
        };
        await first.DisposeAsync();

        // The same message again, as after a worker that committed its rows and died before acknowledging:
        // the broker hands it out with the redelivered flag.
        await client.PublishAsync(queue, json, Ct);
        await client.BounceAsync(queue, TimeSpan.FromSeconds(10), Ct);
        await using var second = await StartAsync("req-redeliver-2", shared);
        var again = Assert.Single(await client.ReceiveAsync(1, ReplyTimeout, Ct)).Body;

        Assert.Equal(ScoreRequestOutcome.PartiallyScored, again.GetProperty("outcome").GetString());
        AssertScoresMatch(mlp, rows.Skip(1).ToList(), again);
        var failure = Assert.Single(again.GetProperty("failures").EnumerateArray());
        Assert.Equal(("d-0", "f_002"), (failure.GetProperty("key").GetString(), failure.GetProperty("column").GetString()));
        Assert.Equal(["d-1", "d-2", "d-3"], (await ReadResultsAsync(second, "request_results_churn", "score")).Keys.Order());
        await using var db = NpgsqlDataSource.Create(second.PostgresConnectionString);
        await using var failed = db.CreateCommand("SELECT count(*) FROM scoring.failed_rows WHERE request_id = 'again'");
        Assert.Equal(1L, await failed.ExecuteScalarAsync(Ct));
        Directory.Delete(models, recursive: true);
    }

    [Fact]
    public async Task A_request_redelivered_past_the_limit_goes_to_the_error_queue_and_others_are_still_scored()
    {
        var models = Directory.CreateTempSubdirectory("bs-req-limit-models-").FullName;
        var first = await StartAsync("req-limit", new() { ["BatchScoring:ModelStorePath"] = models });
        var mlp = await RegisterMlpAsync(first, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);
        var queue = Queue(first);
        var shared = new Dictionary<string, string>
        {
            ["ConnectionStrings:Postgres"] = first.Settings["ConnectionStrings:Postgres"],
            ["BatchScoring:QueuePrefix"] = first.Settings["BatchScoring:QueuePrefix"],
            ["BatchScoring:ModelStorePath"] = models,
            ["BatchScoring:Requests:MaxRedeliveries"] = "2",
        };
        await first.DisposeAsync();

        // "killer" comes back unacknowledged, as after workers that died on it: counted twice already, this is the third.
        // "innocent" was redelivered once: within the limit, it is scored.
        await using (var db = NpgsqlDataSource.Create(first.PostgresConnectionString))
        {
            await using var seed = db.CreateCommand("INSERT INTO scoring.request_redeliveries (request_id, redeliveries) VALUES ('killer', 2)");
            await seed.ExecuteNonQueryAsync(Ct);
        }

        var killerRows = Rows("k-", 2, "f_", seed: 9);
        var innocentRows = Rows("i-", 2, "f_", seed: 10);
        await client.PublishAsync(queue, RequestJson("killer", "churn", killerRows, replyTo: client.ReplyQueue), Ct);
        await client.BounceAsync(queue, TimeSpan.FromSeconds(10), Ct);
        await client.PublishAsync(queue, RequestJson("innocent", "churn", innocentRows, replyTo: client.ReplyQueue), Ct);
        await client.BounceAsync(queue, TimeSpan.FromSeconds(10), Ct);
        await using var second = await StartAsync("req-limit-2", shared);

        var answers = (await client.ReceiveAsync(2, ReplyTimeout, Ct)).ToDictionary(a => a.Body.GetProperty("requestId").GetString()!, a => a.Body);
        Assert.Equal(ScoreRequestOutcome.Rejected, answers["killer"].GetProperty("outcome").GetString());
        Assert.Contains("redelivered 3 times", answers["killer"].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(ScoreRequestOutcome.Scored, answers["innocent"].GetProperty("outcome").GetString());
        AssertScoresMatch(mlp, innocentRows, answers["innocent"]);
        var dead = Assert.Single(await client.DrainAsync(queue + "_error", atLeast: 1, TimeSpan.FromSeconds(10), Ct));
        Assert.Contains("\"killer\"", dead.Body, StringComparison.Ordinal);
        Assert.Contains("MaxRedeliveries", dead.FaultMessage, StringComparison.Ordinal);
        Assert.Equal(["i-0", "i-1"], (await ReadResultsAsync(second, "request_results_churn", "score")).Keys.Order());
        Directory.Delete(models, recursive: true);
    }

    [Fact]
    public async Task A_request_larger_than_the_batch_limit_is_split_and_fully_scored()
    {
        await using var host = await StartAsync("req-split", new() { ["BatchScoring:Requests:MaxBatchRows"] = "64" });
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        var rows = Rows("s-", 150, "f_", seed: 40);
        await client.PublishAsync(Queue(host), RequestJson("big", "churn", rows, replyTo: client.ReplyQueue), Ct);
        var reply = (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0];
        Assert.Equal(ScoreRequestOutcome.Scored, reply.Body.GetProperty("outcome").GetString());
        AssertScoresMatch(mlp, rows, reply.Body);
        Assert.Equal(rows.Select(r => r.Key), reply.Body.GetProperty("scores").EnumerateArray().Select(s => s.GetProperty("key").GetString()));

        var written = await ReadResultsAsync(host, "request_results_churn", "score");
        Assert.Equal(150, written.Count);

        // Rows of one inference call share one scored_at: 150 rows at 64 per call are 3 calls (64 + 64 + 22).
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var calls = db.CreateCommand("SELECT count(*) FROM scoring.request_results_churn GROUP BY scored_at ORDER BY 1 DESC");
        var sizes = new List<long>();
        await using (var reader = await calls.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                sizes.Add(reader.GetInt64(0));
            }
        }

        Assert.Equal([64L, 64L, 22L], sizes);
    }

    [Fact]
    public async Task Requests_over_the_backlog_limit_are_answered_overloaded_at_once()
    {
        await using var host = await StartAsync("req-overload", new()
        {
            ["BatchScoring:Requests:MaxBacklogRows"] = "10",
            ["BatchScoring:Requests:MaxQueueDelayMs"] = "300",
        });
        var mlp = await RegisterMlpAsync(host, "churn", "f_", seed: 3);
        await using var client = await RawAmqpClient.ConnectAsync(servers.RabbitMqUri, Ct);

        // Warm the lane (model load, table) so the burst below meets a running batcher.
        await client.PublishAsync(Queue(host), RequestJson("warm", "churn", Rows("w-", 1, "f_", seed: 1), replyTo: client.ReplyQueue), Ct);
        Assert.Equal(ScoreRequestOutcome.Scored, (await client.ReceiveAsync(1, ReplyTimeout, Ct))[0].Body.GetProperty("outcome").GetString());

        var sent = new Dictionary<string, List<(string Key, float[] X)>>();
        for (var i = 0; i < 20; i++)
        {
            sent[$"burst-{i}"] = Rows($"b{i}-", 5, "f_", seed: 50 + i);
            await client.PublishAsync(Queue(host), RequestJson($"burst-{i}", "churn", sent[$"burst-{i}"], replyTo: client.ReplyQueue), Ct);
        }

        var replies = await client.ReceiveAsync(20, ReplyTimeout, Ct);
        var outcomes = replies.GroupBy(r => r.Body.GetProperty("outcome").GetString()!).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal([ScoreRequestOutcome.Overloaded, ScoreRequestOutcome.Scored], outcomes.Keys.Order());
        Assert.InRange(outcomes[ScoreRequestOutcome.Scored].Count, 1, 4); // at most 10 backlog rows = 2 requests per 300 ms window
        foreach (var reply in outcomes[ScoreRequestOutcome.Overloaded])
        {
            Assert.Contains("retry later", reply.Body.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        foreach (var reply in outcomes[ScoreRequestOutcome.Scored])
        {
            AssertScoresMatch(mlp, sent[reply.Body.GetProperty("requestId").GetString()!], reply.Body);
        }

        var written = await ReadResultsAsync(host, "request_results_churn", "score");
        Assert.Equal(1 + (outcomes[ScoreRequestOutcome.Scored].Count * 5), written.Count);
    }

    private Task<ServiceTestHost> StartAsync(string name, Dictionary<string, string>? extra = null) =>
        ServiceTestHost.StartAsync(servers, name, ServiceRoles.All, Ct, extra);

    private static string Queue(ServiceTestHost host) => host.Settings["BatchScoring:QueuePrefix"] + "score-requests";

    private static async Task<MlpModel> RegisterMlpAsync(ServiceTestHost host, string name, string prefix, int seed, string output = "score", int hidden = 16)
    {
        var mlp = SampleModels.Mlp([Features, hidden, 1], seed, outputName: output, featureNames: FeatureNames(prefix));
        await host.RegisterModelAsync(name, mlp.Bytes, Ct);
        return mlp;
    }

    private static string[] FeatureNames(string prefix) =>
        Enumerable.Range(0, Features).Select(i => prefix + (prefix == "f_" ? i.ToString("D3", CultureInfo.InvariantCulture) : i.ToString(CultureInfo.InvariantCulture))).ToArray();

    private static List<(string Key, float[] X)> Rows(string keyPrefix, int count, string featurePrefix, int seed)
    {
        _ = featurePrefix;
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(i => (keyPrefix + i.ToString(CultureInfo.InvariantCulture), Enumerable.Range(0, Features).Select(_ => (float)Math.Round((random.NextDouble() * 4) - 2, 4)).ToArray()))
            .ToList();
    }

    /// <summary>A plain JSON body as a Python or Node producer would write it (features in any order).</summary>
    private static string RequestJson(
        string requestId, string model, List<(string Key, float[] X)> rows, string? replyTo = null, string? correlationId = null, DateTimeOffset? deadline = null, bool shuffle = false)
    {
        var prefix = model == "beta" ? "x_" : "f_";
        var names = FeatureNames(prefix);
        var order = Enumerable.Range(0, Features).ToArray();
        if (shuffle)
        {
            order = order.Reverse().ToArray();
        }

        var body = new Dictionary<string, object?>
        {
            ["requestId"] = requestId,
            ["model"] = new Dictionary<string, object?> { ["name"] = model },
            ["rows"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["key"] = r.Key,
                ["features"] = order.ToDictionary(i => names[i], i => (object?)r.X[i]),
            }).ToList(),
        };
        if (replyTo is not null)
        {
            body["replyTo"] = replyTo;
        }

        if (correlationId is not null)
        {
            body["correlationId"] = correlationId;
        }

        if (deadline is not null)
        {
            body["deadline"] = deadline.Value.ToString("O", CultureInfo.InvariantCulture);
        }

        return JsonSerializer.Serialize(body);
    }

    private static void AssertScoresMatch(MlpModel mlp, List<(string Key, float[] X)> rows, JsonElement body, string output = "score")
    {
        var scores = body.GetProperty("scores").EnumerateArray()
            .ToDictionary(s => s.GetProperty("key").GetString()!, s => s.GetProperty("outputs").GetProperty(output).GetSingle());
        Assert.Equal(rows.Count, scores.Count);
        foreach (var (key, x) in rows)
        {
            Assert.Equal(MlpReference.Forward(mlp, x)[0], scores[key], 1e-4f);
        }
    }

    private static async Task<Dictionary<string, (string RequestId, string Model, int Version, float Score)>> ReadResultsAsync(ServiceTestHost host, string table, string output)
    {
        await using var db = NpgsqlDataSource.Create(host.PostgresConnectionString);
        await using var command = db.CreateCommand($"SELECT row_key, request_id, model_name, model_version, \"{output}\" FROM scoring.{table}");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new Dictionary<string, (string, string, int, float)>();
        while (await reader.ReadAsync(Ct))
        {
            Assert.True(rows.TryAdd(reader.GetString(0), (reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetFloat(4))), $"row {reader.GetString(0)} written twice");
        }

        return rows;
    }
}

internal static class StringReplaceExtensions
{
    public static string ReplaceFirst(this string text, string oldValue, string newValue)
    {
        var at = text.IndexOf(oldValue, StringComparison.Ordinal);
        return at < 0 ? text : string.Concat(text.AsSpan(0, at), newValue, text.AsSpan(at + oldValue.Length));
    }
}
