#!/usr/bin/env bash
# Starts, stops or reports the throw-away PostgreSQL and RabbitMQ servers the integration tests
# use when neither an environment override nor Docker (Testcontainers) is available.
#
#   tests/scripts/local-servers.sh start  [postgres|rabbitmq|all]   idempotent; reuses running servers
#   tests/scripts/local-servers.sh stop   [postgres|rabbitmq|all]
#   tests/scripts/local-servers.sh status
#   tests/scripts/local-servers.sh clean                            stop, then delete all data
#
# The servers listen on loopback only, on non-default ports, and keep their data under
# $BATCHSCORING_TEST_SERVERS_DIR (default /tmp/batchscoring-test-servers). They are detached from
# the caller and keep running after the tests, so the next run starts in well under a second.
#
#   PostgreSQL  127.0.0.1:55432  user postgres, trust auth, fsync/synchronous_commit/full_page_writes off
#   RabbitMQ    127.0.0.1:56720  user guest/guest (loopback only), node batchscoring-test-56720@localhost,
#               Erlang distribution port 56721 (AMQP port + 1), no plugins
#
# BATCHSCORING_TEST_POSTGRES_PORT and BATCHSCORING_TEST_AMQP_PORT move the ports (the fixture reads
# the same variables); use them with a separate BATCHSCORING_TEST_SERVERS_DIR. Fault tests start
# private servers that way (Infrastructure/PrivateServers.cs) and stop them with
# BATCHSCORING_TEST_PG_STOP_MODE=immediate (pg_ctl's shutdown mode; default fast) or
# BATCHSCORING_TEST_RABBITMQ_STOP=term|kill (SIGTERM, a clean stop, or SIGKILL of the node instead of
# rabbitmqctl stop; both return once the node has exited).
# BATCHSCORING_TEST_RABBITMQ_PROMETHEUS_PORT=N enables the rabbitmq_prometheus plugin on 127.0.0.1:N.
#
# The test fixture (tests/BatchScoring.IntegrationTests/Infrastructure/ServerFixture.cs) runs this
# script; keep the ports there and here in step.
set -euo pipefail

BASE="${BATCHSCORING_TEST_SERVERS_DIR:-/tmp/batchscoring-test-servers}"
PG_PORT="${BATCHSCORING_TEST_POSTGRES_PORT:-55432}"
AMQP_PORT="${BATCHSCORING_TEST_AMQP_PORT:-56720}"
DIST_PORT=$((AMQP_PORT + 1))
RABBIT_NODE="batchscoring-test-$AMQP_PORT@localhost"
START_TIMEOUT_S="${BATCHSCORING_TEST_SERVERS_TIMEOUT:-120}"

PG_DIR="$BASE/postgres"
PG_DATA="$PG_DIR/data"
RMQ_DIR="$BASE/rabbitmq"

log() { printf 'local-servers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# port_open, close_fds and the RabbitMQ node functions (rabbit_*).
source "$(dirname "${BASH_SOURCE[0]}")/rabbitmq-node.sh"

is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- PostgreSQL

pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    echo "$PG_BIN"; return
  fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"; return
  fi
  if command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return
  fi
  return 1
}

# PostgreSQL refuses to run as root: run its tools as the postgres user then.
as_pg() {
  if is_root; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run PostgreSQL as"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  if port_open "$PG_PORT"; then
    log "postgres: something already listens on 127.0.0.1:$PG_PORT, reusing it"
    echo "postgres: running"
    return
  fi
  local bin
  bin="$(pg_bin)" || die "postgres: no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and PATH). Install them: apt-get install postgresql"

  mkdir -p "$PG_DIR"
  is_root && chown postgres: "$PG_DIR"

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA.tmp"
    as_pg "$bin/initdb" -D "$PG_DATA.tmp" -U postgres --auth=trust --encoding=UTF8 --no-locale \
      --no-instructions >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; die "postgres: initdb failed"; }
    cat >>"$PG_DATA.tmp/postgresql.conf" <<EOF

# batchscoring test server: disposable data, speed over durability
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
log_min_messages = warning
EOF
    as_pg mv "$PG_DATA.tmp" "$PG_DATA"
  fi

  # A stale postmaster.pid from a killed server makes pg_ctl refuse to start; the port is free
  # (checked above), so a leftover pid file is stale unless that process is still a postgres.
  if [[ -f "$PG_DATA/postmaster.pid" ]]; then
    local pid
    pid="$(head -n 1 "$PG_DATA/postmaster.pid")"
    if ! kill -0 "$pid" 2>/dev/null; then
      log "postgres: removing stale postmaster.pid (pid $pid)"
      rm -f "$PG_DATA/postmaster.pid"
    fi
  fi

  log "postgres: starting on 127.0.0.1:$PG_PORT (log $PG_DIR/postgres.log)"
  # setsid: own session, so Ctrl-C on the caller's terminal does not stop the server.
  (
    close_fds
    exec setsid -w bash -c "$(declare -f is_root as_pg log die); as_pg '$bin/pg_ctl' -D '$PG_DATA' -l '$PG_DIR/postgres.log' -w -t '$START_TIMEOUT_S' start" \
      </dev/null >"$PG_DIR/pg_ctl.log" 2>&1
  ) || { cat "$PG_DIR/pg_ctl.log" >&2; tail -n 30 "$PG_DIR/postgres.log" >&2 || true; die "postgres: pg_ctl start failed"; }
  echo "postgres: started"
}

stop_postgres() {
  local bin
  if [[ -f "$PG_DATA/postmaster.pid" ]] && bin="$(pg_bin)"; then
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m "${BATCHSCORING_TEST_PG_STOP_MODE:-fast}" -w stop >&2 || true
  else
    log "postgres: not running from $PG_DATA"
  fi
}

# ---------------------------------------------------------------- RabbitMQ

rabbitmqctl_local() {
  local bin
  bin="$(rabbit_bin)" || die "rabbitmq: rabbitmqctl not found"
  ( rabbit_node_env "$RMQ_DIR" "$RABBIT_NODE" "$AMQP_PORT" "$RMQ_DIR/home"; "$bin/rabbitmqctl" -n "$RABBIT_NODE" "$@" )
}

start_rabbitmq() {
  if port_open "$AMQP_PORT"; then
    log "rabbitmq: something already listens on 127.0.0.1:$AMQP_PORT, reusing it"
    echo "rabbitmq: running"
    return
  fi

  rabbit_write_cookie "$RMQ_DIR/home"
  rabbit_write_config "$RMQ_DIR" "$AMQP_PORT" "batchscoring test broker (written by tests/scripts/local-servers.sh)"
  if [[ -n "${BATCHSCORING_TEST_RABBITMQ_PROMETHEUS_PORT:-}" ]]; then
    # Opt-in for a private node: the rabbitmq_prometheus plugin with per-queue series (docs/observability.md).
    echo '[rabbitmq_prometheus].' >"$RMQ_DIR/enabled_plugins"
    printf 'prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = %s\nprometheus.return_per_object_metrics = true\n' \
      "$BATCHSCORING_TEST_RABBITMQ_PROMETHEUS_PORT" >>"$RMQ_DIR/rabbitmq.conf"
  fi

  rabbit_launch "$RMQ_DIR" "$RABBIT_NODE" "$AMQP_PORT" "$RMQ_DIR/home"
  rabbit_await_port "$RMQ_DIR" "$AMQP_PORT" "$START_TIMEOUT_S"
  # The listener opens at the end of boot; await_startup confirms the rabbit app is fully running.
  rabbitmqctl_local await_startup --timeout 60 >&2 || log "rabbitmq: await_startup failed, continuing (port is open)"
  echo "rabbitmq: started"
}

stop_rabbitmq() {
  if [[ -f "$RMQ_DIR/rabbitmq.pid" ]] || port_open "$AMQP_PORT"; then
    local mode="${BATCHSCORING_TEST_RABBITMQ_STOP:-}"
    if [[ $mode == kill || $mode == term ]]; then
      rabbit_signal_stop "$RMQ_DIR" "$([[ $mode == kill ]] && echo KILL || echo TERM)"
      return
    fi
    if ! rabbitmqctl_local stop >&2 2>/dev/null; then
      local pid
      pid="$(cat "$RMQ_DIR/rabbitmq.pid" 2>/dev/null || true)"
      [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    fi
    rm -f "$RMQ_DIR/rabbitmq.pid"
  else
    log "rabbitmq: not running from $RMQ_DIR"
  fi
}

# ---------------------------------------------------------------- main

# One lock per server, so the fixture can start both at once while concurrent test runs still
# never race on the same server. The fd is closed for the daemons (close_fds).
with_lock() {
  local name="$1"; shift
  mkdir -p "$BASE"
  chmod 755 "$BASE" 2>/dev/null || true
  (
    exec 9>"$BASE/.lock-$name"
    flock -w 600 9 || die "could not lock $BASE/.lock-$name"
    "$@"
  )
}

status() {
  local name port
  for pair in "postgres:$PG_PORT" "rabbitmq:$AMQP_PORT"; do
    name="${pair%%:*}"; port="${pair##*:}"
    if port_open "$port"; then echo "$name: listening on 127.0.0.1:$port"; else echo "$name: not listening (127.0.0.1:$port)"; fi
  done
  echo "data: $BASE"
}

cmd="${1:-status}"
which="${2:-all}"
case "$which" in postgres|rabbitmq|all) ;; *) die "unknown server '$which' (postgres|rabbitmq|all)";; esac

servers=()
[[ $which == all || $which == postgres ]] && servers+=(postgres)
[[ $which == all || $which == rabbitmq ]] && servers+=(rabbitmq)

case "$cmd" in
  start) for server in "${servers[@]}"; do with_lock "$server" "start_$server"; done ;;
  stop) for server in "${servers[@]}"; do with_lock "$server" "stop_$server"; done ;;
  status) status ;;
  clean)
    for server in postgres rabbitmq; do with_lock "$server" "stop_$server"; done
    rm -rf "$BASE"
    echo "removed $BASE"
    ;;
  *) echo "usage: $0 {start|stop|status|clean} [postgres|rabbitmq|all]" >&2; exit 2 ;;
esac
