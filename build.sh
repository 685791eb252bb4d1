#!/usr/bin/env bash
# Build and test entry point.
#
#   ./build.sh build   restore and build the solution (Debug)
#   ./build.sh test    install the test servers' packages if needed, then build and run every test
#   ./build.sh deps    only install the packages the tests need (PostgreSQL, RabbitMQ, chromium, docker-compose,
#                      Node.js, unzip, zsh, the npm packages of tests/scripts/check-deploy.sh and of the example producer)
#   ./build.sh up      the service on this machine: private PostgreSQL/RabbitMQ, `batchscore serve`, the sample
#                      pipeline, then the URLs; docker compose instead when an engine with compose answers
#                      (docs/local-service.md; deploy/local/service.sh, deploy/local/compose.sh)
#   ./build.sh down    stop what `up` started and free its ports
#   ./build.sh faults  the full fault scenarios (≥ 20 worker kills, 15 s and 2-minute outages, disk full, ...)
#                      against private servers; writes the table to artifacts/faults/report.md (docs/faults.md)
#
# Environment:
#   CONFIGURATION            Debug (default) or Release
#   BATCHSCORING_SKIP_GPU_BUILD=1  `test` skips the GPU build check (see dotnet_gpu_build)
#   BATCHSCORING_SKIP_APT=1  never call apt-get (the tests then need the servers some other way,
#                            see tests/README.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$(pwd)"
CONFIGURATION="${CONFIGURATION:-Debug}"
SOLUTION="$ROOT/BatchScoring.sln"

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export MASSTRANSIT_USAGE_TELEMETRY=false

log() { printf '==> %s\n' "$*" >&2; }

have_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null 2>&1
}

have_rabbitmq() {
  [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || command -v rabbitmq-server >/dev/null 2>&1
}

# Installs PostgreSQL and RabbitMQ from Debian when they are missing and we are allowed to.
# The packages' maintainer scripts would start default services (5432, 5672); the tests use
# their own servers on other ports, so a temporary policy-rc.d stops invoke-rc.d from starting them.
ensure_server_packages() {
  local missing=()
  have_postgres || missing+=(postgresql)
  have_rabbitmq || missing+=(rabbitmq-server)
  # The status page's browser test drives Debian's chromium (Playwright cannot download browsers here).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # The example producer in another language (examples/node-producer) runs in the integration tests.
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  # tests/scripts/test-tool-install.sh unpacks the tool's portable package.
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  # CompletionScriptTests completes lines in an interactive zsh (the bash case uses the system's bash).
  command -v zsh >/dev/null 2>&1 || missing+=(zsh)
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ "${BATCHSCORING_SKIP_APT:-}" == 1 ]]; then
    log "missing ${missing[*]}; BATCHSCORING_SKIP_APT=1, not installing"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]}: install them (apt-get install rabbitmq-server postgresql chromium)"
    log "or point the tests at servers with BATCHSCORING_TEST_POSTGRES / BATCHSCORING_TEST_RABBITMQ"
    return 0
  fi

  log "installing ${missing[*]}"
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, written by build.sh: do not start services during install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  # shellcheck disable=SC2064
  trap "[[ $created_policy == 1 ]] && rm -f '$policy'" EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
  if [[ $created_policy == 1 ]]; then
    rm -f "$policy"
  fi
  trap - EXIT
}

# npm ci for examples/node-producer (its test fails without node_modules; it is skipped only where node is absent).
ensure_node_example() {
  local dir="$ROOT/examples/node-producer"
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found: the Node.js example producer's test will be skipped"
    return 0
  fi
  if [[ -d $dir/node_modules/amqplib && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
    return 0
  fi
  log "installing the Node.js example's packages (npm ci in examples/node-producer)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

dotnet_build() {
  dotnet build "$SOLUTION" -c "$CONFIGURATION" -nologo
}

# The GPU variant (-p:OnnxRuntimeGpu=true, Microsoft.ML.OnnxRuntime.Gpu) in its own artifacts folder, so that it
# cannot rot unseen: restore what the GPU image publishes, compile the one project that differs, and run the
# provider-choice tests, which without a GPU must pick CPU in one log line, without ONNX Runtime's native error.
dotnet_gpu_build() {
  if [[ "${BATCHSCORING_SKIP_GPU_BUILD:-}" == 1 ]]; then
    log "BATCHSCORING_SKIP_GPU_BUILD=1: not building the GPU variant"
    return 0
  fi
  local artifacts="$ROOT/artifacts/gpu" tests=BatchScoring.Scoring.Tests
  log "GPU variant: restore src/BatchScoring.Cli, build and run tests/$tests provider tests"
  dotnet restore "$ROOT/src/BatchScoring.Cli" -p:OnnxRuntimeGpu=true --artifacts-path "$artifacts" -nologo
  dotnet build "$ROOT/tests/$tests" -c "$CONFIGURATION" -p:OnnxRuntimeGpu=true --artifacts-path "$artifacts" -nologo
  "$artifacts/bin/$tests/${CONFIGURATION,,}/$tests" -noColor -class '*ModelLoadTests*' -class '*OnnxRuntimeLogTests*'
}

dotnet_test() {
  # global.json selects Microsoft.Testing.Platform, so `dotnet test` takes --solution.
  local extra=()
  # In CI list every test with its output; the integration tests' ServerSourceTests output says
  # where PostgreSQL and RabbitMQ came from (see tests/README.md).
  local reports="$ROOT/TestResults/reports" status=0
  if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    # A markdown report per test assembly: its failures are printed again at the very end, because the
    # servers' logs of the tests that ran after a failure bury the runner's own failure message.
    rm -rf "$reports"
    extra+=(--output detailed --no-progress --results-directory "$reports" --report-xunit-markdown)
  fi
  dotnet test --solution "$SOLUTION" -c "$CONFIGURATION" "${extra[@]}" "$@" || status=$?
  if [[ $status -ne 0 && -d $reports ]]; then
    print_failed_tests "$reports"
  fi
  return "$status"
}

print_failed_tests() {
  local report
  echo "==> failed tests (from the markdown reports in $1)"
  for report in "$1"/*.md; do
    [[ -e $report ]] || continue
    # Each failure: the test's name, its exception message and the first frames of its stack.
    awk '/^#### / { failed = /^#### Failed/ } failed && shown++ < 120' "$report"
  done
}

# The fault scenarios (tests with trait Category=Faults) at full size; `test` runs their reduced set.
dotnet_faults() {
  local report="$ROOT/artifacts/faults/report.md" status=0
  mkdir -p "$(dirname "$report")"
  {
    echo "Fault scenarios, $(date -u +%Y-%m-%d), \`./build.sh faults\` ($(nproc) cores)"
    echo
    echo "| scenario | runs | rows expected | lost | duplicated | outcome |"
    echo "|---|---|---|---|---|---|"
  } >"$report"
  dotnet build "$ROOT/tests/BatchScoring.IntegrationTests" -c "$CONFIGURATION" -nologo
  BATCHSCORING_FAULTS=full BATCHSCORING_FAULTS_REPORT="$report" \
    dotnet test --project "$ROOT/tests/BatchScoring.IntegrationTests" -c "$CONFIGURATION" --no-build -- \
    --filter-trait "Category=Faults" "$@" || status=$?
  cat "$report"
  return "$status"
}

# The offline schema validation of deploy/ (tests/scripts/check-deploy.sh) runs on these npm packages.
ensure_deploy_check_packages() {
  local dir="$ROOT/tests/scripts/deploy-check"
  if [[ -d $dir/node_modules/kubernetes-models ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found: tests/scripts/check-deploy.sh will skip the schema validation"
    return 0
  fi
  log "installing the deploy check's npm packages ($dir)"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error </dev/null
}

# check-deploy.sh validates docker-compose.yml with Debian's docker-compose (no Docker engine needed); it skips
# that step when the package cannot be installed, so a failure here is not fatal.
ensure_compose_check() {
  command -v docker-compose >/dev/null 2>&1 && return 0
  if [[ "${BATCHSCORING_SKIP_APT:-}" == 1 || $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "docker-compose not installed: tests/scripts/check-deploy.sh will skip docker-compose.yml"
    return 0
  fi
  log "installing docker-compose"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker-compose </dev/null >&2 \
    || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends docker-compose </dev/null >&2; } \
    || log "could not install docker-compose: tests/scripts/check-deploy.sh will skip docker-compose.yml"
}

cmd="${1:-test}"
shift || true
case "$cmd" in
  build) dotnet_build ;;
  deps)
    ensure_server_packages
    ensure_deploy_check_packages
    ensure_compose_check
    ensure_node_example
    ;;
  test)
    ensure_server_packages
    ensure_node_example
    dotnet_build
    dotnet_gpu_build
    dotnet_test --no-build "$@"
    ;;
  up | down) exec "$ROOT/deploy/local/service.sh" "$cmd" "$@" ;;
  faults)
    ensure_server_packages
    dotnet_faults "$@"
    ;;
  *)
    echo "usage: $0 {build|test|deps|up|down|faults} [extra dotnet test arguments]" >&2
    exit 2
    ;;
esac
