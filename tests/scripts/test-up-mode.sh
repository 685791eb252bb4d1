#!/usr/bin/env bash
# How `./build.sh up` chooses between docker compose and local servers (deploy/local/compose.sh), with a fake
# `docker` command that logs its calls: no Docker engine is needed, and no server or container is started.
# The compose path itself (images, containers, the pipeline in them) is NOT exercised here (docs/local-service.md).
#
#   tests/scripts/test-up-mode.sh      exit 0 when every check passed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { printf 'test-up-mode: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'test-up-mode: ok: %s\n' "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fake="$work/docker"
calls="$work/calls"
# FAKE_COMPOSE / FAKE_INFO: exit status of `docker compose version` / `docker info`; every call is logged.
cat >"$fake" <<'FAKE'
#!/usr/bin/env bash
echo "$*" >>"$FAKE_CALLS"
case "$1 ${2:-}" in
  "compose version") exit "${FAKE_COMPOSE:-0}" ;;
  "info "*) exit "${FAKE_INFO:-0}" ;;
esac
exit 0
FAKE
chmod +x "$fake"

export BATCHSCORING_LOCAL_DIR="$work/local" FAKE_CALLS="$calls"
service() { "$ROOT/deploy/local/service.sh" "$@"; }
mode() { : >"$calls"; service mode 2>"$work/why"; }

[[ "$(BATCHSCORING_DOCKER="$work/no-such-docker" mode)" == local ]] || fail "no docker command: not local"
grep -q "no '$work/no-such-docker' command" "$work/why" || fail "no docker command: reason not said"
pass "no docker command -> local"

[[ "$(BATCHSCORING_DOCKER="$fake" FAKE_COMPOSE=1 mode)" == local ]] || fail "no compose plugin: not local"
grep -q "compose version' failed" "$work/why" || fail "no compose plugin: reason not said"
pass "docker without compose -> local"

[[ "$(BATCHSCORING_DOCKER="$fake" FAKE_INFO=1 mode)" == local ]] || fail "engine down: not local"
grep -q "info' failed" "$work/why" || fail "engine down: reason not said"
grep -qx "compose version" "$calls" || fail "engine down: compose version was not asked"
pass "compose but no engine -> local"

[[ "$(BATCHSCORING_DOCKER="$fake" mode)" == docker ]] || fail "engine with compose: not docker"
pass "engine with compose -> docker"

[[ "$(BATCHSCORING_DOCKER="$fake" BATCHSCORING_LOCAL_MODE=local mode)" == local ]] || fail "BATCHSCORING_LOCAL_MODE=local: not local"
[[ ! -s $calls ]] || fail "BATCHSCORING_LOCAL_MODE=local still ran docker: $(cat "$calls")"
pass "BATCHSCORING_LOCAL_MODE=local -> local without asking docker"

if BATCHSCORING_DOCKER="$fake" FAKE_INFO=1 BATCHSCORING_LOCAL_MODE=docker service up 2>"$work/why"; then
  fail "BATCHSCORING_LOCAL_MODE=docker without an engine: up succeeded"
fi
grep -q "BATCHSCORING_LOCAL_MODE=docker, but" "$work/why" || fail "BATCHSCORING_LOCAL_MODE=docker: no reason ($(cat "$work/why"))"
[[ ! -e $BATCHSCORING_LOCAL_DIR/ports ]] || fail "BATCHSCORING_LOCAL_MODE=docker without an engine fell back to local servers"
pass "BATCHSCORING_LOCAL_MODE=docker without an engine -> refused"

# up in docker mode runs compose on the repository's docker-compose.yml; the fake starts nothing, so readiness times
# out (1 s) after the compose call; down then stops the compose project and forgets the mode.
: >"$calls"
if BATCHSCORING_DOCKER="$fake" BATCHSCORING_LOCAL_READY_TIMEOUT=1 service up >/dev/null 2>"$work/why"; then
  fail "up with a fake engine succeeded"
fi
grep -qx "compose -f $ROOT/docker-compose.yml up -d --build" "$calls" || fail "up did not run docker compose up: $(cat "$calls")"
grep -q "api container was not ready" "$work/why" || fail "up: readiness failure not said ($(cat "$work/why"))"
[[ "$(cat "$BATCHSCORING_LOCAL_DIR/mode")" == docker ]] || fail "up did not remember docker mode"
pass "up (docker) -> docker compose up -d --build on docker-compose.yml"

: >"$calls"
BATCHSCORING_DOCKER="$fake" service down >/dev/null 2>&1 || fail "down after docker up failed"
grep -qx "compose -f $ROOT/docker-compose.yml down" "$calls" || fail "down did not run docker compose down: $(cat "$calls")"
[[ ! -e $BATCHSCORING_LOCAL_DIR/mode ]] || fail "down kept the docker mode"
pass "down (docker) -> docker compose down"
echo "test-up-mode: all checks passed" >&2
