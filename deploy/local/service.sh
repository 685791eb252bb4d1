#!/usr/bin/env bash
# The whole service on this machine: private PostgreSQL and RabbitMQ on loopback, `batchscore serve` (all roles)
# in the background, and the sample pipeline through the CLI. Called by `./build.sh up` and `./build.sh down`
# (docs/local-service.md).
#
#   deploy/local/service.sh up      idempotent: reuses servers and a service that are already running
#   deploy/local/service.sh down    stops the service and both servers; idempotent
#   deploy/local/service.sh status
#
# Environment:
#   BATCHSCORING_LOCAL_DIR            data, logs, pid file, samples, outputs (default ~/.batchscoring/local)
#   BATCHSCORING_LOCAL_POSTGRES_PORT  default 32432     BATCHSCORING_LOCAL_AMQP_PORT  default 32672 (+1: Erlang dist)
#   BATCHSCORING_LOCAL_API_PORT       default 5080      BATCHSCORING_LOCAL_ROWS       sample rows (default 100000)
#   BATCHSCORING_LOCAL_PIPELINE=0     start everything but skip the sample pipeline
#   CONFIGURATION                     Debug (default) or Release: which build of the CLI runs
#   BATCHSCORING_LOCAL_MODE           auto (default: docker compose when an engine answers), docker or local
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONFIGURATION="${CONFIGURATION:-Debug}"
DIR="${BATCHSCORING_LOCAL_DIR:-$HOME/.batchscoring/local}"
PG_PORT="${BATCHSCORING_LOCAL_POSTGRES_PORT:-32432}"
AMQP_PORT="${BATCHSCORING_LOCAL_AMQP_PORT:-32672}"
API_PORT="${BATCHSCORING_LOCAL_API_PORT:-5080}"
ROWS="${BATCHSCORING_LOCAL_ROWS:-100000}"
MODEL=churn
TABLE=scoring.results_churn
DATABASE=batchscoring
API="http://127.0.0.1:$API_PORT"
CLI="$ROOT/src/BatchScoring.Cli/bin/$CONFIGURATION/net10.0/batchscore"
PID_FILE="$DIR/service.pid"
LOG_FILE="$DIR/service.log"
READY_TIMEOUT_S="${BATCHSCORING_LOCAL_READY_TIMEOUT:-180}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The integration tests' shared servers live on 55432/56720 (tests/README.md); the local service must never
# reuse or stop them.
for port in "$PG_PORT" "$AMQP_PORT" "$((AMQP_PORT + 1))"; do
  case "$port" in
    55432 | 56720 | 56721) die "port $port belongs to the integration tests' servers; choose another (docs/local-service.md)" ;;
  esac
done

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PID_FILE="$DIR/service.pid"
LOG_FILE="$DIR/service.log"

# PostgreSQL runs as the postgres user when we are root; it cannot enter a directory under /root (mode 700), so
# its data then goes where it can, and the choice is remembered for `down`.
servers_dir() {
  local remembered="$DIR/servers.path"
  if [[ -s $remembered ]]; then
    cat "$remembered"; return
  fi
  local dir="$DIR/servers"
  if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$DIR"; then
    dir="/var/tmp/batchscoring-local-$PG_PORT"
  fi
  echo "$dir" >"$remembered"
  echo "$dir"
}

# PostgreSQL's data directory keeps the port it was created with, so a local directory belongs to one set of ports.
check_ports() {
  local file="$DIR/ports" ports="postgres=$PG_PORT amqp=$AMQP_PORT"
  if [[ -s $file && "$(cat "$file")" != "$ports" ]]; then
    die "$DIR was set up with $(cat "$file"); use those ports, or another BATCHSCORING_LOCAL_DIR (after ./build.sh down)"
  fi
  echo "$ports" >"$file"
}

servers() {
  BATCHSCORING_TEST_SERVERS_DIR="$(servers_dir)" BATCHSCORING_TEST_POSTGRES_PORT="$PG_PORT" \
    BATCHSCORING_TEST_AMQP_PORT="$AMQP_PORT" "$ROOT/tests/scripts/local-servers.sh" "$@"
}

export ConnectionStrings__Postgres="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$DATABASE"
export ConnectionStrings__RabbitMq="amqp://guest:guest@127.0.0.1:$AMQP_PORT/"
export BatchScoring__ModelStorePath="$DIR/models"
export BATCHSCORING_API="$API"
export MASSTRANSIT_USAGE_TELEMETRY=false DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=deploy/local/compose.sh
source "$ROOT/deploy/local/compose.sh"

psql_local() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

service_pid() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q batchscore "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

start_service() {
  if [[ -n "$(service_pid)" ]]; then
    log "service already running (pid $(service_pid), log $LOG_FILE)"
    return
  fi
  if port_open "$API_PORT"; then
    die "something else listens on 127.0.0.1:$API_PORT; set BATCHSCORING_LOCAL_API_PORT"
  fi
  log "starting batchscore serve on $API (log $LOG_FILE)"
  (
    cd "$DIR"
    # Own session and no inherited descriptors: the service outlives this script and Ctrl-C on it.
    # Tiered compilation off for serve (src/BatchScoring.Cli/ServiceRuntime.props).
    DOTNET_TieredCompilation=0 exec setsid "$CLI" serve --urls "$API" </dev/null >>"$LOG_FILE" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  ) &
  echo $! >"$PID_FILE"
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until curl -fsS -o /dev/null "$API/health/ready" 2>/dev/null; do
    if [[ -z "$(service_pid)" ]]; then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "the service exited before it was ready (log $LOG_FILE)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "the service was not ready within ${READY_TIMEOUT_S}s (log $LOG_FILE)"
    fi
    sleep 0.5
  done
  log "ready: $API/health/ready"
}

# The CLI has no verb for score requests (upstream services publish them), and the private broker has no HTTP
# management plugin: the node itself publishes the plain-JSON requests (rabbitmqctl eval).
send_score_requests() {
  local node="batchscoring-test-$AMQP_PORT@localhost" home
  home="$(servers_dir)/rabbitmq/home"
  local i features body erl=""
  for i in 1 2 3; do
    features="$(for f in 0 1 2 3 4 5 6 7; do printf '"f_%03d": %s.%s, ' "$f" "$(((i + f) % 3))" "$((i * 7 + f))"; done)"
    body="{\"requestId\": \"up-$(date +%s)-$i\", \"model\": {\"name\": \"$MODEL\", \"version\": \"production\"}, \"rows\": [{\"key\": \"c-$i\", \"features\": {${features%, }}}]}"
    body="${body//\"/\\\"}"
    # #'P_basic'{content_type = <<"application/json">>, delivery_mode = 2} as a plain tuple (eval knows no records).
    erl+="rabbit_basic:publish(rabbit_misc:r(<<\"/\">>, exchange, <<\"\">>), <<\"score-requests\">>, {'P_basic', <<\"application/json\">>, undefined, undefined, 2, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined}, <<\"$body\">>), "
  done
  HOME="$home" RABBITMQ_USE_LONGNAME=false /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$node" eval "${erl}ok." >/dev/null
}

pipeline() {
  local samples="$DIR/samples" out version status
  if [[ ! -f $samples/data.parquet ]]; then
    log "generate: sample model and $ROWS rows in $samples"
    "$CLI" generate --out "$samples" --rows "$ROWS" --features 8 --hidden 32 >/dev/null
  fi
  log "models register --name $MODEL"
  version="$("$CLI" models register --name "$MODEL" --file "$samples/model.onnx" --json | grep -o '"version": *[0-9]*' | head -n 1)"
  version="${version##*[: ]}"
  [[ -n $version ]] || die "models register printed no version"
  log "models alias --name $MODEL --alias production --version $version"
  "$CLI" models alias --name "$MODEL" --alias production --version "$version"
  log "models profile --name $MODEL (reference for drift audits)"
  "$CLI" models profile --name "$MODEL" --version production --input "$samples/data.parquet" --key-column customer_id
  out="$DIR/out/$(date -u +%Y%m%dT%H%M%SZ)"
  log "jobs submit --model $MODEL@production --wait"
  "$CLI" jobs submit --model "$MODEL@production" --input "$samples/data.parquet" --key-column customer_id \
    --passthrough region --output-table "$TABLE" --output-parquet "$out" --chunk-rows 10000 --wait
  log "score requests: 3 plain-JSON requests to queue score-requests"
  local before after deadline
  before="$(request_rows)"
  # rabbit_basic:publish is the broker's internal API (checked on RabbitMQ 3.10): where it differs, say so and go on.
  if send_score_requests; then
    deadline=$((SECONDS + 60))
    until after="$(request_rows)" && ((after >= before + 3)); do
      ((SECONDS < deadline)) || die "the score requests were not answered within 60s (log $LOG_FILE)"
      sleep 0.5
    done
    log "score requests: $((after - before)) rows in scoring.request_results_$MODEL"
  else
    log "score requests skipped: this RabbitMQ could not publish them from rabbitmqctl (send some as schemas/README.md shows)"
  fi
  log "drift audit --name $MODEL"
  status=0
  "$CLI" drift audit --name "$MODEL" || status=$?
  case $status in
    0 | 3 | 4) ;; # no drift, drift found, too few samples: all are answers
    *) die "drift audit failed (exit $status)" ;;
  esac
}

request_rows() {
  if [[ -z "$(psql_local -d "$DATABASE" -c "SELECT to_regclass('scoring.request_results_$MODEL')")" ]]; then
    echo 0
  else
    psql_local -d "$DATABASE" -c "SELECT count(*) FROM scoring.request_results_$MODEL"
  fi
}

up() {
  local mode
  mode="$(choose_mode)" || exit 1
  if [[ $mode == docker ]]; then
    compose_up
    return
  fi
  check_ports
  "$ROOT/build.sh" deps
  command -v psql >/dev/null 2>&1 || die "psql is missing: apt-get install postgresql-client"
  command -v curl >/dev/null 2>&1 || die "curl is missing: apt-get install curl"
  log "private PostgreSQL 127.0.0.1:$PG_PORT and RabbitMQ 127.0.0.1:$AMQP_PORT (data in $(servers_dir))"
  servers start all >/dev/null
  if [[ "$(psql_local -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    psql_local -d postgres -c "CREATE DATABASE $DATABASE"
  fi
  if [[ -z "$(service_pid)" ]]; then
    log "building the CLI ($CONFIGURATION)"
    dotnet build "$ROOT/src/BatchScoring.Cli" -c "$CONFIGURATION" -nologo -v q >&2
    log "migrate"
    "$CLI" migrate
  fi
  start_service
  wait_ready
  if [[ "${BATCHSCORING_LOCAL_PIPELINE:-1}" != 0 ]]; then
    pipeline
  fi
  cat <<EOF

BatchScoring is running (stop it with ./build.sh down):
  API and status page  $API/
  metrics              $API/metrics
  OpenAPI              $API/openapi/v1.json
  health               $API/health/ready
  service log          $LOG_FILE  (pid $(service_pid))
  results              psql -h 127.0.0.1 -p $PG_PORT -U postgres -d $DATABASE -c 'SELECT model_version, count(*), avg(score) FROM $TABLE GROUP BY 1'
  CLI                  export BATCHSCORING_API=$API; dotnet run --project src/BatchScoring.Cli -- jobs list
EOF
}

down() {
  # Docker mode is remembered by up: its containers are stopped, and the local servers too if any run.
  if [[ -s $MODE_FILE ]]; then
    compose_down
  fi
  local pid
  pid="$(service_pid)"
  if [[ -n $pid ]]; then
    log "stopping the service (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  else
    log "service: not running"
  fi
  rm -f "$PID_FILE"
  # term: a clean stop by SIGTERM that returns once the node has exited (rabbitmqctl stop returns before).
  BATCHSCORING_TEST_RABBITMQ_STOP=term servers stop all
  local port busy=() deadline=$((SECONDS + 30))
  for port in "$API_PORT" "$PG_PORT" "$AMQP_PORT" "$((AMQP_PORT + 1))"; do
    while port_open "$port" && ((SECONDS < deadline)); do sleep 0.2; done
    port_open "$port" && busy+=("$port")
  done
  ((${#busy[@]} == 0)) || die "still listening on 127.0.0.1: ${busy[*]}"
  log "stopped; ports $API_PORT, $PG_PORT, $AMQP_PORT, $((AMQP_PORT + 1)) are free (data kept in $DIR)"
}

status() {
  local pid
  pid="$(service_pid)"
  if [[ -n $pid ]]; then echo "service: running, pid $pid, $API (log $LOG_FILE)"; else echo "service: not running ($API)"; fi
  servers status
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  mode) choose_mode ;;
  *) echo "usage: $0 {up|down|status|mode}" >&2; exit 2 ;;
esac
