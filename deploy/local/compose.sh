# shellcheck shell=bash
# The Docker path of `./build.sh up` / `down` (docs/local-service.md), sourced by deploy/local/service.sh: with a
# Docker engine that has compose, the whole service runs from docker-compose.yml instead of private local servers.
#
#   BATCHSCORING_LOCAL_MODE  auto (default): docker when `docker compose version` and `docker info` both succeed,
#                            else local; docker: refuse to run without a usable engine; local: never Docker.
#   BATCHSCORING_DOCKER      the docker command (default docker).

DOCKER="${BATCHSCORING_DOCKER:-docker}"
COMPOSE_FILE="$ROOT/docker-compose.yml"
COMPOSE_API_KEY="${BATCHSCORING_API_KEY:-change-me}"
MODE_FILE="$DIR/mode"

# Prints "docker" or "local" and, on stderr, why. Exit 1 only when docker is required and unusable.
choose_mode() {
  local wanted="${BATCHSCORING_LOCAL_MODE:-auto}" why=""
  case "$wanted" in
    local) echo local; log "mode local (BATCHSCORING_LOCAL_MODE=local)"; return ;;
    auto | docker) ;;
    *) die "BATCHSCORING_LOCAL_MODE must be auto, docker or local, not '$wanted'" ;;
  esac
  if ! command -v "$DOCKER" >/dev/null 2>&1; then
    why="no '$DOCKER' command"
  elif ! "$DOCKER" compose version >/dev/null 2>&1; then
    why="'$DOCKER compose version' failed (no compose plugin)"
  elif ! "$DOCKER" info >/dev/null 2>&1; then
    why="'$DOCKER info' failed (no engine answers)"
  elif [[ ! -f $COMPOSE_FILE ]]; then
    why="$COMPOSE_FILE is missing"
  fi
  if [[ -z $why ]]; then
    echo docker; log "mode docker: a Docker engine with compose answers ($COMPOSE_FILE)"; return
  fi
  [[ $wanted == docker ]] && die "BATCHSCORING_LOCAL_MODE=docker, but $why"
  echo local; log "mode local: $why"
}

compose() { "$DOCKER" compose -f "$COMPOSE_FILE" "$@"; }

# The CLI inside the compose network: the worker image's batchscore with /data shared with api and workers.
compose_cli() {
  compose run --rm -T -e BATCHSCORING_API=http://api:5080 -e BATCHSCORING_API_KEY="$COMPOSE_API_KEY" worker "$@"
}

compose_up() {
  echo docker >"$MODE_FILE"
  log "docker compose up -d --build ($COMPOSE_FILE)"
  BATCHSCORING_API_KEY="$COMPOSE_API_KEY" compose up -d --build
  local api="http://127.0.0.1:5080" deadline=$((SECONDS + READY_TIMEOUT_S))
  until curl -fsS -o /dev/null "$api/health/ready" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      compose logs --tail 30 api >&2 || true
      die "the api container was not ready within ${READY_TIMEOUT_S}s (docker compose logs api)"
    fi
    sleep 1
  done
  log "ready: $api/health/ready"
  if [[ "${BATCHSCORING_LOCAL_PIPELINE:-1}" != 0 ]]; then
    compose_pipeline
  fi
  cat <<EOT

BatchScoring is running in Docker (stop it with ./build.sh down):
  API and status page  $api/   (API key $COMPOSE_API_KEY)
  metrics              $api/metrics
  OpenAPI              $api/openapi/v1.json
  health               $api/health/ready
  service log          docker compose logs -f api worker
  results              docker compose exec postgres psql -U batchscoring -d batchscoring -c 'SELECT model_version, count(*), avg(score) FROM $TABLE GROUP BY 1'
  CLI                  export BATCHSCORING_API=$api BATCHSCORING_API_KEY=$COMPOSE_API_KEY; dotnet run --project src/BatchScoring.Cli -- jobs list
EOT
}

compose_pipeline() {
  local samples=/data/samples version status out
  out="/data/out/$(date -u +%Y%m%dT%H%M%SZ)"
  log "generate: sample model and $ROWS rows in $samples (docker volume data)"
  compose_cli generate --out "$samples" --rows "$ROWS" --features 8 --hidden 32 >/dev/null
  log "models register --name $MODEL"
  version="$(compose_cli models register --name "$MODEL" --file "$samples/model.onnx" --json | grep -o '"version": *[0-9]*' | head -n 1)"
  version="${version##*[: ]}"
  [[ -n $version ]] || die "models register printed no version"
  compose_cli models alias --name "$MODEL" --alias production --version "$version"
  compose_cli models profile --name "$MODEL" --version production --input "$samples/data.parquet" --key-column customer_id
  log "jobs submit --model $MODEL@production --wait"
  compose_cli jobs submit --model "$MODEL@production" --input "$samples/data.parquet" --key-column customer_id \
    --passthrough region --output-table "$TABLE" --output-parquet "$out" --chunk-rows 10000 --wait
  log "score requests: not sent in Docker mode (publish them as the README's \"Score requests\" shows)"
  status=0
  compose_cli drift audit --name "$MODEL" || status=$?
  case $status in
    0 | 3 | 4) ;;
    *) die "drift audit failed (exit $status)" ;;
  esac
}

# Stops the containers; volumes (models, jobs, results) stay for the next up, as the local data directory does.
compose_down() {
  log "docker compose down ($COMPOSE_FILE; volumes kept)"
  compose down
  rm -f "$MODE_FILE"
}
