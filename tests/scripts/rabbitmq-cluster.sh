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

# port_open, close_fds and the RabbitMQ node functions (rabbit_*).
source "$(dirname "${BASH_SOURCE[0]}")/rabbitmq-node.sh"

node_port() { echo "${PORTS[$(($1 - 1))]}"; }
node_name() { echo "bs-cluster-$(node_port "$1")@localhost"; }
node_dir() { echo "$BASE/node$1"; }

ctl() {
  local n="$1"; shift
  local bin
  bin="$(rabbit_bin)" || die "rabbitmqctl not found"
  ( rabbit_node_env "$(node_dir "$n")" "$(node_name "$n")" "$(node_port "$n")" "$BASE/home"; "$bin/rabbitmqctl" -n "$(node_name "$n")" "$@" )
}

# Launches node n in the background if it is not running; returns at once. All nodes share one HOME, so one cookie.
launch_node() {
  local n="$1" port
  port="$(node_port "$n")"
  if port_open "$port"; then
    return
  fi
  rabbit_write_config "$(node_dir "$n")" "$port" "batchscoring cluster test node $n (written by tests/scripts/rabbitmq-cluster.sh)"
  rabbit_launch "$(node_dir "$n")" "$(node_name "$n")" "$port" "$BASE/home"
}

await_node() { rabbit_await_port "$(node_dir "$1")" "$(node_port "$1")" "$START_TIMEOUT_S"; }

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
  rabbit_write_cookie "$BASE/home"
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
  local n="$1"
  if [[ ! -s "$(node_dir "$n")/rabbitmq.pid" ]]; then
    log "node $n: not running"
    return
  fi
  rabbit_signal_stop "$(node_dir "$n")" "$([[ ${BATCHSCORING_CLUSTER_STOP:-} == kill ]] && echo KILL || echo TERM)"
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
