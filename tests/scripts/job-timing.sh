#!/usr/bin/env bash
# Where a small job's time goes (docs/job-timing.md): starts `batchscore serve` (all roles, one process) on a fresh
# database and queue prefix, submits a 10-row job RUNS times over HTTP (POST, then long polls until it ends), and
# prints per job the client's times and the service's own timestamps for each step. Needs PostgreSQL and RabbitMQ
# (defaults: the test servers of tests/README.md), psql, curl and python3. Usage: tests/scripts/job-timing.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-10}
ROWS=${ROWS:-10}
BATCHSCORE=${BATCHSCORE:-"dotnet tests/BatchScoring.IntegrationTests/bin/Debug/net10.0/batchscore.dll"}
PG_HOST=${PG_HOST:-127.0.0.1} PG_PORT=${PG_PORT:-55432} PG_USER=${PG_USER:-postgres}
RABBIT=${RABBIT:-amqp://guest:guest@127.0.0.1:56720/}
PORT=${PORT:-$((20000 + $$ % 20000))}
name="jobtiming_$$"
work=$(mktemp -d)
admin="host=$PG_HOST port=$PG_PORT user=$PG_USER dbname=postgres"
serve_pid=""
cleanup() {
  if [[ -n "$serve_pid" ]]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  grep -iE "warn|fail|error|warm-up" "$work/serve.log" >&2 || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$admin" -qc "CREATE DATABASE $name"
export ConnectionStrings__Postgres="Host=$PG_HOST;Port=$PG_PORT;Username=$PG_USER;Database=$name"
export ConnectionStrings__RabbitMq="$RABBIT"
export BatchScoring__QueuePrefix="$name-" BatchScoring__ModelStorePath="$work/models"
export Logging__LogLevel__Default=Warning
export BATCHSCORING_API="http://127.0.0.1:$PORT"
$BATCHSCORE serve --migrate --urls "$BATCHSCORING_API" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 240); do
  curl -sf "$BATCHSCORING_API/health/ready" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.5
done
$BATCHSCORE generate --out "$work/sample" --rows "$ROWS" --features 8 --hidden 16 --row-group-rows "$ROWS" >/dev/null
$BATCHSCORE models register --name tiny --file "$work/sample/model.onnx" >/dev/null

WORK="$work" RUNS="$RUNS" BATCHSCORE="$BATCHSCORE" python3 - <<'PY'
import json, os, subprocess, time, urllib.parse, urllib.request
api, work, runs = os.environ["BATCHSCORING_API"], os.environ["WORK"], int(os.environ["RUNS"])
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)
ids = []
for i in range(runs):
    t0 = time.time()
    job = call("POST", "/api/jobs", {"model": "tiny", "input": f"{work}/sample/data.parquet", "keyColumn": "customer_id",
                                     "outputTable": "tiny_results", "outputParquet": f"{work}/out{i}"})
    t1 = time.time()
    while job["state"] in ("queued", "running"):
        if os.environ.get("MODE") == "poll":  # the CLI before long polling: a read every 250 ms
            time.sleep(0.25)
            job = call("GET", f"/api/jobs/{job['id']}")
            continue
        since = urllib.parse.quote(job["updatedAt"]) if job.get("updatedAt") else ""
        job = call("GET", f"/api/jobs/{job['id']}?wait=30s&since={since}")
    t2 = time.time()
    ids.append((job["id"], t0, t1, t2, job["state"], job.get("stages")))
with open(f"{work}/runs.json", "w") as f:
    json.dump(ids, f)
# The whole command, CLI process start-up included.
cli = os.environ["BATCHSCORE"].split()
walls = []
for i in range(runs):
    t0 = time.time()
    subprocess.run(cli + ["jobs", "submit", "--model", "tiny", "--input", f"{work}/sample/data.parquet", "--key-column", "customer_id",
                          "--output-table", "tiny_results", "--wait", "--json"], check=True, stdout=subprocess.DEVNULL)
    walls.append((time.time() - t0) * 1000)
t0 = time.time()
subprocess.run(cli + ["--help"], check=True, stdout=subprocess.DEVNULL)
print(f"batchscore jobs submit --wait: {' '.join(f'{w:.0f}' for w in walls)} ms (median {sorted(walls)[len(walls) // 2]:.0f}); "
      f"batchscore --help alone: {(time.time() - t0) * 1000:.0f} ms")
PY
python3 - "$work/runs.json" <<'PY' >"$work/ids.sql"
import json, sys
print("\n".join(f"('{i}'::uuid, to_timestamp({t0}), to_timestamp({t1}), to_timestamp({t2}))," for i, t0, t1, t2, *_ in json.load(open(sys.argv[1])))[:-1])
PY
# Milliseconds from the client's POST to each step; the last column is the client seeing the end.
psql "host=$PG_HOST port=$PG_PORT user=$PG_USER dbname=$name" -q <<SQL
WITH client(id, t0, t1, t2) AS (VALUES $(cat "$work/ids.sql")),
steps AS (
  SELECT j.id, c.t0,
         extract(epoch FROM j.created_at - c.t0)::double precision * 1000 AS planned,
         extract(epoch FROM j.started_at - c.t0)::double precision * 1000 AS running,
         extract(epoch FROM ch.sent_at - c.t0)::double precision * 1000 AS sent,
         extract(epoch FROM c.t1 - c.t0)::double precision * 1000 AS post_answered,
         extract(epoch FROM ch.started_at - c.t0)::double precision * 1000 AS chunk_started,
         extract(epoch FROM ch.finished_at - c.t0)::double precision * 1000 AS chunk_committed,
         extract(epoch FROM j.finished_at - c.t0)::double precision * 1000 AS job_finished,
         extract(epoch FROM c.t2 - c.t0)::double precision * 1000 AS client_saw_end,
         (ch.read_seconds + ch.convert_seconds + ch.infer_seconds + ch.copy_seconds + ch.parquet_seconds) * 1000 AS chunk_work,
         ch.wait_seconds * 1000 AS queue_wait
  FROM client c JOIN scoring.jobs j ON j.id = c.id JOIN scoring.chunks ch ON ch.job_id = j.id)
SELECT row_number() OVER (ORDER BY t0) AS run, round(planned) AS planned, round(running) AS running, round(sent) AS sent,
       round(post_answered) AS post_answered, round(chunk_started) AS chunk_started, round(chunk_committed) AS chunk_committed,
       round(job_finished) AS job_finished, round(client_saw_end) AS client_saw_end, round(chunk_work::numeric, 1) AS chunk_work, round(queue_wait::numeric, 1) AS queue_wait
FROM steps ORDER BY t0;
SQL
