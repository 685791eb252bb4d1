# shellcheck shell=bash
# One RabbitMQ node in a directory of its own, on a loopback port: sourced by tests/scripts/local-servers.sh (the
# shared test broker and the private nodes of single tests) and tests/scripts/rabbitmq-cluster.sh (three nodes).
# The caller defines `log` and `die`. A node's directory holds rabbitmq.conf, mnesia/, log/ and rabbitmq.pid; its
# Erlang distribution port is its AMQP port + 1.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Daemons must not inherit our descriptors: a lock (fd 9) would stay held for the server's lifetime, and an
# inherited pipe would keep `dotnet test` or CI waiting for end-of-file.
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

# rabbit_node_env DIR NODE PORT HOME: everything RabbitMQ's scripts read is pointed into DIR, and HOME to HOME:
# Erlang's cookie is $HOME/.erlang.cookie, and Debian's /usr/sbin wrappers would switch to the rabbitmq user (whose
# cookie is /var/lib/rabbitmq/.erlang.cookie) when run as root and refuse to run for anyone else. Calling the
# scripts in /usr/lib/rabbitmq/bin directly with our own HOME gives the server and rabbitmqctl the same cookie
# whoever runs them.
rabbit_node_env() {
  local dir="$1" port="$3"
  export HOME="$4"
  export RABBITMQ_NODENAME="$2"
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

# rabbit_write_cookie HOME: the Erlang cookie of every node and rabbitmqctl that use HOME, made once.
rabbit_write_cookie() {
  local cookie="$1/.erlang.cookie" value
  mkdir -p "$1"
  if [[ ! -s "$cookie" ]]; then
    rm -f "$cookie"
    value="$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'A-Z')"
    (umask 077; printf '%s' "${value:0:32}" >"$cookie")
    chmod 400 "$cookie"
  fi
}

# rabbit_write_config DIR PORT DESCRIPTION: guest/guest on loopback only, no plugins, warnings to the log file.
rabbit_write_config() {
  local dir="$1"
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
# $3
listeners.tcp.1 = 127.0.0.1:$2
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
}

# rabbit_launch DIR NODE PORT HOME: starts the node in the background and returns at once, unless the pid file of a
# node that did not open its port yet names a live Erlang VM (it is still booting).
rabbit_launch() {
  local dir="$1" node="$2" port="$3" home="$4" bin pid
  bin="$(rabbit_bin)" || die "rabbitmq-server not found (looked in /usr/lib/rabbitmq/bin and PATH). Install it: apt-get install rabbitmq-server"
  if [[ -f "$dir/rabbitmq.pid" ]]; then
    pid="$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q beam "/proc/$pid/cmdline" 2>/dev/null; then
      log "$node: process $pid exists but the port is closed; waiting for it"
      return
    fi
    rm -f "$dir/rabbitmq.pid"
  fi
  log "$node: starting on 127.0.0.1:$port (logs in $dir/log)"
  (
    rabbit_node_env "$dir" "$node" "$port" "$home"
    close_fds
    cd "$dir"
    # setsid -f: a new session, forked into the background; all output to files, so no pipe of the caller
    # (dotnet test, CI) stays open.
    setsid -f "$bin/rabbitmq-server" </dev/null >"$dir/log/startup_stdout.log" 2>"$dir/log/startup_stderr.log"
  )
}

# rabbit_await_port DIR PORT TIMEOUT_S: waits for the listener; past the timeout, prints the node's logs and dies.
rabbit_await_port() {
  local dir="$1" port="$2" deadline=$((SECONDS + $3))
  until port_open "$port"; do
    if ((SECONDS > deadline)); then
      tail -n 40 "$dir/log/startup_stdout.log" "$dir/log/startup_stderr.log" "$dir/log/"*.log >&2 2>/dev/null || true
      die "rabbitmq: the node in $dir did not open 127.0.0.1:$port within $3 s"
    fi
    sleep 0.5
  done
}

# rabbit_signal_stop DIR TERM|KILL: signals the node of DIR's pid file and waits (up to 60 s) for it to exit. A signal
# acts at once (rabbitmqctl first boots an Erlang VM, seconds on a loaded box); TERM is a clean stop.
rabbit_signal_stop() {
  local dir="$1" pid deadline=$((SECONDS + 60))
  pid="$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)"
  if [[ -n "$pid" ]]; then
    kill "-$2" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  rm -f "$dir/rabbitmq.pid"
}
