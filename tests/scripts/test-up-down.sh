#!/usr/bin/env bash
# Smoke test of `./build.sh up` and `./build.sh down` (docs/local-service.md), run by .ci/run: a temporary
# BATCHSCORING_LOCAL_DIR and free ports, so it never meets a developer's local service or the integration tests'
# servers (55432/56720), which must still answer afterwards.
#
#   tests/scripts/test-up-down.sh      exit 0 when every check passed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROWS=30000
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
fail() { printf 'test-up-down: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'test-up-down: ok: %s\n' "$*" >&2; }

# Draws a random free port whose neighbour (RabbitMQ's Erlang distribution port) is free too, in 31000-32399: below
# Linux's ephemeral range (a client connection's local port could take it before the server binds it), above the
# integration tests' private servers (21000-31000) and the local service's defaults (32432, 32672); appends the pair
# to $taken.
draw_port_pair() {
  local port
  for _ in $(seq 200); do
    port=$((31000 + RANDOM % 1400))
    if ! port_open "$port" && ! port_open "$((port + 1))" \
      && [[ " ${taken[*]} " != *" $port "* && " ${taken[*]} " != *" $((port + 1)) "* ]]; then
      taken+=("$port" "$((port + 1))")
      return
    fi
  done
  fail "no free port pair in 31000-32399"
}
taken=()

export BATCHSCORING_LOCAL_DIR
BATCHSCORING_LOCAL_DIR="$(mktemp -d /tmp/batchscoring-up-test.XXXXXX)"
export BATCHSCORING_LOCAL_POSTGRES_PORT BATCHSCORING_LOCAL_AMQP_PORT BATCHSCORING_LOCAL_API_PORT
draw_port_pair && draw_port_pair && draw_port_pair
BATCHSCORING_LOCAL_POSTGRES_PORT="${taken[0]}" BATCHSCORING_LOCAL_AMQP_PORT="${taken[2]}" BATCHSCORING_LOCAL_API_PORT="${taken[4]}"
export BATCHSCORING_LOCAL_ROWS=$ROWS
# The local-servers path, even where a Docker engine answers (test-up-mode.sh checks the choice).
export BATCHSCORING_LOCAL_MODE=local
PG=$BATCHSCORING_LOCAL_POSTGRES_PORT AMQP=$BATCHSCORING_LOCAL_AMQP_PORT API=$BATCHSCORING_LOCAL_API_PORT

test_pg_before=0 test_rmq_before=0
port_open 55432 && test_pg_before=1
port_open 56720 && test_rmq_before=1

cleanup() {
  "$ROOT/build.sh" down >/dev/null 2>&1 || true
  rm -rf "$BATCHSCORING_LOCAL_DIR" "/var/tmp/batchscoring-local-$PG"
}
trap cleanup EXIT

start=$SECONDS
out="$BATCHSCORING_LOCAL_DIR/up.out"
if ! "$ROOT/build.sh" up </dev/null >"$out" 2>&1; then
  tail -n 40 "$out" >&2
  tail -n 40 "$BATCHSCORING_LOCAL_DIR/service.log" >&2 2>/dev/null || true
  fail "./build.sh up exited non-zero"
fi
pass "./build.sh up in $((SECONDS - start)) s (API $API, PostgreSQL $PG, RabbitMQ $AMQP)"

q() { psql -h 127.0.0.1 -p "$PG" -U postgres -d batchscoring -qAt -v ON_ERROR_STOP=1 -c "$1"; }

code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API/health/ready")"
[[ $code == 200 ]] || fail "/health/ready answered $code"
pass "/health/ready 200"

job="$(q "SELECT id FROM scoring.jobs WHERE state = 'succeeded' ORDER BY created_at DESC LIMIT 1")"
[[ -n $job ]] || fail "no succeeded job: $(q "SELECT string_agg(id || ' ' || state, ', ') FROM scoring.jobs")"
rows="$(q "SELECT count(*) FROM scoring.results_churn WHERE job_id = '$job'")"
[[ $rows == "$ROWS" ]] || fail "job $job wrote $rows rows to scoring.results_churn, expected $ROWS"
pass "job $job succeeded with $rows rows in scoring.results_churn"

requests="$(q "SELECT count(*) FROM scoring.request_results_churn")"
[[ $requests == 3 ]] || fail "scoring.request_results_churn holds $requests rows, expected 3"
pass "3 score requests answered"

reports="$(q "SELECT count(*) FROM scoring.drift_reports")"
((reports >= 1)) || fail "no drift report stored"
for needle in "http://127.0.0.1:$API/metrics" "http://127.0.0.1:$API/openapi/v1.json" "psql -h 127.0.0.1 -p $PG"; do
  grep -qF "$needle" "$out" || fail "up did not print $needle"
done
pass "drift report stored; URLs and psql line printed"

"$ROOT/build.sh" up </dev/null >"$out" 2>&1 || { tail -n 20 "$out" >&2; fail "a second ./build.sh up failed"; }
pass "a second ./build.sh up reuses what runs"

"$ROOT/build.sh" down </dev/null >"$out" 2>&1 || { cat "$out" >&2; fail "./build.sh down exited non-zero"; }
for port in "$API" "$PG" "$AMQP" "$((AMQP + 1))"; do
  ! port_open "$port" || fail "port $port still open after down"
done
"$ROOT/build.sh" down </dev/null >"$out" 2>&1 || { cat "$out" >&2; fail "a second ./build.sh down exited non-zero"; }
pass "./build.sh down freed $API, $PG, $AMQP, $((AMQP + 1)), twice"

if ((test_pg_before)); then port_open 55432 || fail "the integration tests' PostgreSQL (55432) stopped"; fi
if ((test_rmq_before)); then port_open 56720 || fail "the integration tests' RabbitMQ (56720) stopped"; fi
pass "all checks in $((SECONDS - start)) s"
