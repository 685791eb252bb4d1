#!/usr/bin/env node
// A BatchScoring producer written from schemas/ alone (no .NET): it submits a scoring job in a MassTransit envelope,
// waits for SubmitScoringJobAccepted and for the job's ScoringJobCompleted / ScoringJobFailed event, then sends a
// plain-JSON ScoreRequest with a reply queue and waits for its answer. Every message it sends or receives is
// validated against its schema. It prints one JSON line per step and exits 0 when the job succeeded and the
// request was scored.
//
//   AMQP_URL=amqp://guest:guest@localhost:5672 node producer.js --model churn --input /data/in/customers.parquet \
//     --key-column customer_id --output-table scoring.results_churn --features '{"tenure_months":14,"monthly_spend":42.5}'
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { randomUUID } = require("node:crypto");
const { parseArgs } = require("node:util");
const amqp = require("amqplib");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    "model-version": { type: "string" }, // a number ("3") is sent as a JSON number in the score request
    input: { type: "string" },
    "key-column": { type: "string" },
    "output-table": { type: "string" },
    features: { type: "string" }, // one row's features as a JSON object
    "queue-prefix": { type: "string", default: process.env.QUEUE_PREFIX ?? "" },
    "timeout-seconds": { type: "string", default: "120" },
    schemas: { type: "string", default: process.env.SCHEMAS_DIR ?? path.join(__dirname, "..", "..", "schemas") },
  },
});
for (const required of ["model", "input", "key-column", "output-table", "features"]) {
  if (!args[required]) {
    console.error(`--${required} is required`);
    process.exit(2);
  }
}

// Every schema under its $id (urn:batchscoring:schemas:<name>), so cross-file $refs resolve.
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
for (const file of fs.readdirSync(args.schemas).filter((f) => f.endsWith(".schema.json"))) {
  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(args.schemas, file), "utf8")));
}

function check(name, document) {
  const validate = ajv.getSchema(`urn:batchscoring:schemas:${name}`);
  if (!validate(document)) {
    throw new Error(`${name} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(document)}`);
  }
  return document;
}

function print(step, body) {
  console.log(JSON.stringify({ step, body }));
}

const urn = (type) => `urn:message:BatchScoring.Contracts:${type}`;

async function main() {
  const deadline = Date.now() + Number(args["timeout-seconds"]) * 1000;
  const connection = await amqp.connect(process.env.AMQP_URL ?? "amqp://guest:guest@localhost:5672");
  try {
    const channel = await connection.createConfirmChannel();
    // mandatory: true returns a message nobody can receive (the worker has not declared its queue yet).
    channel.on("return", (message) => {
      console.error(`not routed: queue ${message.fields.routingKey} does not exist (start a worker first)`);
      process.exit(1);
    });

    // One exclusive queue receives everything: the accepted reply (through a temporary exchange MassTransit sends
    // to), the job events (fanout exchanges of the event types), and the plain-JSON score answer (by queue name).
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    const replyExchange = `node-producer-${randomUUID()}`;
    await channel.assertExchange(replyExchange, "fanout", { durable: false, autoDelete: true });
    await channel.bindQueue(queue, replyExchange, "");
    for (const event of ["ScoringJobCompleted", "ScoringJobFailed"]) {
      await channel.assertExchange(`BatchScoring.Contracts:${event}`, "fanout", { durable: true });
      await channel.bindQueue(queue, `BatchScoring.Contracts:${event}`, "");
    }

    // A message can arrive before anyone waits for it (a small job may end before its accepted reply is read), so
    // what no waiter took is kept for the next receive.
    const waiting = [];
    const unclaimed = [];
    await channel.consume(queue, (message) => {
      const body = JSON.parse(message.content.toString("utf8"));
      const waiter = waiting.find((w) => w.match(body));
      if (waiter) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve(body);
      } else {
        unclaimed.push(body);
      }
    }, { noAck: true });
    const receive = (what, match) => new Promise((resolve, reject) => {
      const early = unclaimed.findIndex(match);
      if (early >= 0) {
        resolve(unclaimed.splice(early, 1)[0]);
        return;
      }
      const timer = setTimeout(() => reject(new Error(`no ${what} before the timeout`)), Math.max(0, deadline - Date.now()));
      waiting.push({ match, resolve: (body) => { clearTimeout(timer); resolve(body); } });
    });

    // 1. The job, as a request: MassTransit answers SubmitScoringJobAccepted to responseAddress.
    const messageId = randomUUID();
    const requestId = randomUUID();
    const envelope = check("masstransit-envelope", {
      messageId,
      requestId,
      responseAddress: `exchange:${replyExchange}?temporary=true`,
      messageType: [urn("SubmitScoringJob")],
      sentTime: new Date().toISOString(),
      message: check("submit-scoring-job", {
        model: args.model,
        ...(args["model-version"] ? { modelVersion: args["model-version"] } : {}),
        input: args.input,
        keyColumn: args["key-column"],
        outputTable: args["output-table"],
        idempotencyKey: `node-producer-${messageId}`,
      }),
    });
    const accepted = receive("SubmitScoringJobAccepted", (b) => b.requestId === requestId && b.messageType?.includes(urn("SubmitScoringJobAccepted")));
    channel.sendToQueue(`${args["queue-prefix"]}submit-scoring-job`, Buffer.from(JSON.stringify(envelope)), {
      contentType: "application/vnd.masstransit+json",
      persistent: true,
      messageId,
      mandatory: true,
    });
    await channel.waitForConfirms();
    const acceptedEnvelope = check("masstransit-envelope", await accepted);
    const job = check("submit-scoring-job-accepted", acceptedEnvelope.message);
    print("accepted", job);

    // 2. The job's outcome, from the event exchanges.
    const outcome = check("masstransit-envelope", await receive("job event", (b) => b.message?.jobId === job.jobId && (
      b.messageType?.includes(urn("ScoringJobCompleted")) || b.messageType?.includes(urn("ScoringJobFailed")))));
    const completed = outcome.messageType.includes(urn("ScoringJobCompleted"));
    print(completed ? "job-completed" : "job-failed", check(completed ? "scoring-job-completed" : "scoring-job-failed", outcome.message));

    // 3. A score request (plain JSON, no envelope); the answer comes back to our queue as plain JSON.
    const version = args["model-version"];
    const scoreRequest = check("score-request", {
      requestId: randomUUID(),
      model: { name: args.model, ...(version ? { version: /^\d+$/.test(version) ? Number(version) : version } : {}) },
      rows: [{ key: "node-1", features: JSON.parse(args.features) }],
      replyTo: queue,
      correlationId: `node-${messageId}`,
    });
    const answer = receive("score answer", (b) => b.requestId === scoreRequest.requestId && !b.messageType);
    channel.sendToQueue(`${args["queue-prefix"]}score-requests`, Buffer.from(JSON.stringify(scoreRequest)), {
      contentType: "application/json",
      correlationId: scoreRequest.correlationId,
      persistent: true,
      mandatory: true,
    });
    await channel.waitForConfirms();
    const scored = check("score-request-completed", await answer);
    print("answer", scored);

    return completed && scored.outcome === "scored" ? 0 : 1;
  } finally {
    await connection.close();
  }
}

main().then((code) => process.exit(code), (err) => {
  console.error(err.message);
  process.exit(1);
});
