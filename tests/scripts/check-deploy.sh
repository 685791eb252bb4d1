#!/usr/bin/env bash
# Checks deploy/ offline, as CI runs it (.ci/run):
#   1. `kubectl kustomize` of the base (deploy/k8s) and of each overlay (deploy/k8s-overlays/*);
#   2. every rendered object against the JSON schema of its kind (kubernetes-models packages: Kubernetes, KEDA,
#      Prometheus Operator; no download at check time) plus this project's rules: restricted pod security,
#      memory/cpu resources, an emptyDir /tmp, a PodDisruptionBudget per Deployment (deploy-check/validate-k8s.mjs);
#   3. `docker-compose config -q` of docker-compose.yml (Debian's docker-compose 1.29; there is no Docker engine);
#   4. every way the project deploys `serve` starts it with tiered compilation off (src/BatchScoring.Cli/ServiceRuntime.props).
# `./build.sh deps` installs what it needs (npm packages in tests/scripts/deploy-check, docker-compose); a missing
# tool skips its step with a message, a failing check exits 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CHECK_DIR=tests/scripts/deploy-check
status=0
log() { printf 'check-deploy: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; status=1; }

if [[ ! -d $CHECK_DIR/node_modules/kubernetes-models ]] && command -v npm >/dev/null 2>&1; then
  log "installing the schema packages (npm ci in $CHECK_DIR)"
  npm ci --prefix "$CHECK_DIR" --no-audit --no-fund --loglevel=error >&2 || log "npm ci failed"
fi
validate() {
  if [[ -d $CHECK_DIR/node_modules/kubernetes-models ]] && command -v node >/dev/null 2>&1; then
    node "$CHECK_DIR/validate-k8s.mjs" "$1"
  else
    log "SKIPPED schema validation of $1: node or the npm packages are missing (./build.sh deps)"
    cat >/dev/null
  fi
}

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
if command -v kubectl >/dev/null 2>&1; then
  for dir in deploy/k8s deploy/k8s-overlays/*/; do
    dir="${dir%/}"
    name="${dir#deploy/}"; name="${name//\//-}"
    if kubectl kustomize "$dir" >"$rendered/$name.yaml"; then
      validate "$dir" <"$rendered/$name.yaml" || fail "$dir: schema validation"
    else
      fail "kubectl kustomize $dir"
    fi
  done
else
  log "SKIPPED kustomize: kubectl is not installed; validating the base files as they are"
  for file in deploy/k8s/*.yaml; do
    [[ $(basename "$file") == kustomization.yaml ]] && continue
    cat "$file"; echo "---"
  done | validate deploy/k8s || fail "deploy/k8s: schema validation"
fi

if command -v docker-compose >/dev/null 2>&1; then
  # docker-compose 1.29 predates the top-level `name:` of the Compose Specification: check a copy without it
  # (the project name comes from -p instead).
  sed '/^name:/d' docker-compose.yml >"$rendered/docker-compose.yml"
  if docker-compose -f "$rendered/docker-compose.yml" --project-directory . -p batchscoring config -q; then
    log "docker-compose.yml: valid"
  else
    fail "docker-compose config"
  fi
else
  log "SKIPPED docker-compose.yml: docker-compose is not installed (apt-get install docker-compose, or ./build.sh deps)"
fi

# The runtimeconfig turns tiered compilation on for the commands; serve's throughput needs it off (docs/cli.md).
for file in deploy/docker/Dockerfile.cpu deploy/docker/Dockerfile.gpu docker-compose.yml deploy/local/service.sh; do
  grep -Eq 'DOTNET_TieredCompilation(=|: *")0' "$file" || fail "$file does not start serve with DOTNET_TieredCompilation=0"
done

((status == 0)) && log "deploy/ and docker-compose.yml: OK"
exit "$status"
