#!/usr/bin/env bash
# Starts, stops or reports a three-node RabbitMQ cluster on loopback, for the scale-out tests
# (tests/BatchScoring.IntegrationTests/Scale) and for trying workers against several nodes by hand.
#
#   tests/scripts/rabbitmq-cluster.sh start  [1|2|3|all]   idempotent; forms the cluster on first start
#   tests/scripts/rabbitmq-cluster.sh stop   [1|2|3|all]   one node (the others keep serving) or all
#   tests/scripts/rabbitmq-cluster.sh status               listeners and `rabbitmqctl cluster_status`
#   tests/scripts/rabbitmq-cluster.sh clean                stop all, then delete all data
#   tests/scripts/rabbitmq-cluster.sh ctl N ARGS...        rabbitmqctl -q on node N, e.g.
#                                                          ctl 2 list_queues name type leader members arguments
#
# Every node has its own RABBITMQ_NODENAME (bs-cluster-<amqp port>@localhost), AMQP port, Erlang
# distribution port (AMQP port + 1), mnesia and log directories under $BATCHSCORING_CLUSTER_DIR
# (default /tmp/batchscoring-rabbitmq-cluster); all share one Erlang cookie (one HOME). Nodes 2 and
# 3 join node 1 with `rabbitmqctl join_cluster` the first time they start; a node stopped and
# started again rejoins by itself (its mnesia directory remembers the cluster).
#
#   BATCHSCORING_CLUSTER_AMQP_PORTS   three AMQP ports, default "24672 24674 24676"; keep them in
#                                     21000-31000 (below the ephemeral range, see LocalServers.cs)
#   BATCHSCORING_CLUSTER_STOP=kill    SIGKILL instead of a clean stop (SIGTERM)
#
# Never the shared test broker on 56720 (tests/scripts/local-servers.sh): this script refuses it.
# User guest/guest, loopback only, no plugins.
set -euo pipefail

BASE="${BATCHSCORING_CLUSTER_DIR:-/tmp/batchscoring-rabbitmq-cluster}"
read -r -a PORTS <<<"${BATCHSCORING_CLUSTER_AMQP_PORTS:-24672 24674 24676}"
START_TIMEOUT_S="${BATCHSCORING_TEST_SERVERS_TIMEOUT:-180}"

log() { printf 'rabbitmq-cluster: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

((${#PORTS[@]} == 3)) || die "BATCHSCORING_CLUSTER_AMQP_PORTS must name three ports (was '${PORTS[*]}')"
for port in "${PORTS[@]}"; do
  [[ $port =~ ^[0-9]+$ ]] || die "not a port: $port"
  ((port != 56720 && port + 1 != 56720 && port != 56721)) || die "port $port collides with the shared test broker (56720/56721)"
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

close_fds() {
  local fd
  for fd in $(ls /proc/$BASHPID/fd 2>/dev/null); do
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

rabbit_bin() {
  if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    echo /usr/lib/rabbitmq/bin; return
  fi
  if command -v rabbitmq-server >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v rabbitmq-server)")"; return
  fi
  return 1
}

node_port() { echo "${PORTS[$(($1 - 1))]}"; }
node_name() { echo "bs-cluster-$(node_port "$1")@localhost"; }
node_dir() { echo "$BASE/node$1"; }

# As in local-servers.sh: the scripts in /usr/lib/rabbitmq/bin with our own HOME, so every node and
# rabbitmqctl read the same cookie whoever runs them.
node_env() {
  local n="$1" dir port
  dir="$(node_dir "$n")"; port="$(node_port "$n")"
  export HOME="$BASE/home"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME="$(node_name "$n")"
  export RABBITMQ_USE_LONGNAME=false
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$port"
  export RABBITMQ_DIST_PORT=$((port + 1))
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
  unset RABBITMQ_ENABLED_PLUGINS RABBITMQ_SERVER_START_ARGS RABBITMQ_CTL_ERL_ARGS || true
}

ctl() {
  local n="$1"; shift
  local bin
  bin="$(rabbit_bin)" || die "rabbitmqctl not found"
  ( node_env "$n"; "$bin/rabbitmqctl" -n "$(node_name "$n")" "$@" )
}

write_cookie() {
  mkdir -p "$BASE/home"
  local cookie="$BASE/home/.erlang.cookie"
  if [[ ! -s "$cookie" ]]; then
    rm -f "$cookie"
    local value
    value="$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'A-Z')"
    (umask 077; printf '%s' "${value:0:32}" >"$cookie")
    chmod 400 "$cookie"
  fi
}

# Launches node n in the background if it is not running; returns at once.
launch_node() {
  local n="$1" dir port bin
  dir="$(node_dir "$n")"; port="$(node_port "$n")"
  bin="$(rabbit_bin)" || die "rabbitmq-server not found (looked in /usr/lib/rabbitmq/bin and PATH). Install it: apt-get install rabbitmq-server"
  if port_open "$port"; then
    return
  fi
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
# batchscoring cluster test node $n (written by tests/scripts/rabbitmq-cluster.sh)
listeners.tcp.1 = 127.0.0.1:$port
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  if [[ -f "$dir/rabbitmq.pid" ]]; then
    local pid
    pid="$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q beam "/proc/$pid/cmdline" 2>/dev/null; then
      log "node $n: process $pid exists but the port is closed; waiting for it"
      return
    fi
    rm -f "$dir/rabbitmq.pid"
  fi
  log "node $n: starting $(node_name "$n") on 127.0.0.1:$port (logs in $dir/log)"
  (
    node_env "$n"
    close_fds
    cd "$dir"
    setsid -f "$bin/rabbitmq-server" </dev/null >"$dir/log/startup_stdout.log" 2>"$dir/log/startup_stderr.log"
  )
}

await_node() {
  local n="$1" dir port deadline=$((SECONDS + START_TIMEOUT_S))
  dir="$(node_dir "$n")"; port="$(node_port "$n")"
  until port_open "$port"; do
    if ((SECONDS > deadline)); then
      tail -n 40 "$dir/log/startup_stdout.log" "$dir/log/startup_stderr.log" "$dir/log/"*.log >&2 2>/dev/null || true
      die "node $n did not open 127.0.0.1:$port within ${START_TIMEOUT_S}s"
    fi
    sleep 0.5
  done
}

# Node n (2 or 3) joins node 1 once; a marker file records it, so later starts skip the CLI calls.
join_node() {
  local n="$1" dir
  dir="$(node_dir "$n")"
  [[ -f "$dir/joined" ]] && return
  log "node $n: joining $(node_name 1)"
  ctl "$n" stop_app >&2
  ctl "$n" join_cluster "$(node_name 1)" >&2
  ctl "$n" start_app >&2
  touch "$dir/joined"
}

start() {
  local which="$1" n
  write_cookie
  if [[ $which == all ]]; then
    for n in 1 2 3; do launch_node "$n"; done
    for n in 1 2 3; do await_node "$n"; done
    join_node 2
    join_node 3
  else
    launch_node "$which"
    await_node "$which"
    if [[ ! -f "$(node_dir "$which")/joined" && $which != 1 ]]; then join_node "$which"; fi
  fi
  echo "cluster: started ($which)"
}

stop_node() {
  local n="$1" dir pid deadline=$((SECONDS + 60))
  dir="$(node_dir "$n")"
  pid="$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)"
  if [[ -z "$pid" ]]; then
    log "node $n: not running"
    return
  fi
  # A signal acts at once (rabbitmqctl stop first boots an Erlang VM); TERM is a clean stop.
  kill "-$([[ ${BATCHSCORING_CLUSTER_STOP:-} == kill ]] && echo KILL || echo TERM)" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  rm -f "$dir/rabbitmq.pid"
  log "node $n: stopped"
}

stop() {
  local which="$1" n
  if [[ $which == all ]]; then
    # Reverse order: node 1 stops last, so it is the one that may start first again.
    for n in 3 2 1; do stop_node "$n"; done
  else
    stop_node "$which"
  fi
}

status() {
  local n port running=""
  for n in 1 2 3; do
    port="$(node_port "$n")"
    if port_open "$port"; then
      echo "node $n: $(node_name "$n") listening on 127.0.0.1:$port"
      running="${running:-$n}"
    else
      echo "node $n: $(node_name "$n") not listening (127.0.0.1:$port)"
    fi
  done
  if [[ -n $running ]]; then
    # "running_nodes":[...] of the JSON status: the nodes the cluster sees as up.
    ctl "$running" cluster_status --formatter json 2>/dev/null | grep -o '"running_nodes":\[[^]]*\]' || echo "cluster_status failed"
  fi
  echo "data: $BASE"
}

with_lock() {
  mkdir -p "$BASE"
  (
    exec 9>"$BASE/.lock"
    flock -w 600 9 || die "could not lock $BASE/.lock"
    "$@"
  )
}

cmd="${1:-status}"
which="${2:-all}"
case "$which" in 1|2|3|all) ;; *) die "unknown node '$which' (1|2|3|all)";; esac

case "$cmd" in
  start) with_lock start "$which" ;;
  stop) with_lock stop "$which" ;;
  status) status ;;
  ctl)
    [[ $which != all ]] || die "ctl needs a node (1|2|3)"
    shift 2
    ctl "$which" -q "$@"
    ;;
  clean)
    with_lock stop all
    rm -rf "$BASE"
    echo "removed $BASE"
    ;;
  *) echo "usage: $0 {start|stop|status|clean} [1|2|3|all] | ctl {1|2|3} ARGS..." >&2; exit 2 ;;
esac
