#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU (CI has none): builds the GPU variant of `batchscore` the way
# deploy/docker/Dockerfile.gpu does, scores the wide model (MLP 256-1024-1024-1, the benchmark's "heavy"
# workload) once on CUDA and once on CPU, checks that the scores agree and prints rows/s of both.
#
#   tests/scripts/gpu-check.sh
#
# Needs the .NET SDK, an NVIDIA driver that supports CUDA 13 (>= 580), and the CUDA 13 + cuDNN 9 libraries
# on the library path (the GPU image has them; see deploy/README.md).
#
# Environment:
#   GPU_CHECK_ROWS=200000        rows scored in each run
#   GPU_CHECK_BATCH_ROWS=8192    rows per inference call
#   GPU_CHECK_TOLERANCE=0.002    largest allowed |CUDA - CPU| per score (CUDA may use TF32 matrix products)
#   GPU_CHECK_DIR=<dir>          work directory (default: a new temporary one, removed when the check passes)
#
# Exit status: 0 CUDA was used and agrees with CPU; 1 the check failed; 3 no NVIDIA GPU here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROWS="${GPU_CHECK_ROWS:-200000}"
BATCH_ROWS="${GPU_CHECK_BATCH_ROWS:-8192}"
TOLERANCE="${GPU_CHECK_TOLERANCE:-0.002}"
WORK="${GPU_CHECK_DIR:-$(mktemp -d -t batchscoring-gpu-check.XXXXXX)}"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# `score` prints its rows/s with the current culture's digit grouping; C gives plain commas to strip.
export LC_ALL=C

say() { printf '==> %s\n' "$*"; }
fail() {
  printf 'gpu-check: FAILED: %s\n' "$*" >&2
  printf 'gpu-check: work files kept in %s\n' "$WORK" >&2
  exit 1
}

# 1. A GPU, seen through the driver.
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi not found). Run it on a machine with an NVIDIA GPU and driver," >&2
  echo "gpu-check: or inside the GPU image started with --gpus all." >&2
  exit 3
fi
if ! gpus="$(nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader 2>&1)" || [[ -z "$gpus" ]]; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi lists none: ${gpus:-no output})." >&2
  exit 3
fi
say "GPUs (index, name, driver):"
printf '    %s\n' "$gpus"
driver_major="$(head -n 1 <<<"$gpus" | awk -F', ' '{ split($3, v, "."); print v[1] }')"
if [[ "$driver_major" =~ ^[0-9]+$ ]] && ((driver_major < 580)); then
  say "warning: driver $driver_major is older than CUDA 13 needs (>= 580); expect the CUDA run to fall back to CPU"
fi

mkdir -p "$WORK"
CLI_DIR="$WORK/cli"
CLI="$CLI_DIR/batchscore.dll"

# 2. The GPU variant, published like the GPU image (own artifacts folder: the CPU build stays untouched).
say "publishing src/BatchScoring.Cli with -p:OnnxRuntimeGpu=true → $CLI_DIR"
dotnet publish "$ROOT/src/BatchScoring.Cli/BatchScoring.Cli.csproj" -c Release -r linux-x64 --self-contained false \
  -p:OnnxRuntimeGpu=true --artifacts-path "$ROOT/artifacts/gpu-check" -o "$CLI_DIR" -nologo -v quiet

# 3. What the CUDA provider links against, and whether this machine has it.
provider="$CLI_DIR/libonnxruntime_providers_cuda.so"
[[ -f "$provider" ]] || fail "$provider is missing from the publish output: the GPU package did not restore"
if command -v readelf >/dev/null 2>&1; then
  say "NEEDED by libonnxruntime_providers_cuda.so (the GPU image must provide these; it also opens libcudnn.so.9):"
  readelf -d "$provider" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/    \1/p'
fi
if missing="$(ldd "$provider" | grep 'not found')"; then
  fail "libraries the CUDA provider needs are not found (install CUDA 13 and cuDNN 9, or run in the GPU image):
$missing"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so\.9' && [[ "${LD_LIBRARY_PATH:-}" != *cudnn* ]]; then
  say "warning: libcudnn.so.9 is not in the linker cache; the CUDA provider opens it at run time"
fi

# 4. The wide model and its data.
say "generating the wide model (MLP 256-1024-1024-1) and $ROWS rows"
dotnet "$CLI" generate --out "$WORK/data" --rows "$ROWS" --features 256 --hidden 1024 >/dev/null

# 5. One run per provider. The CPU run hides the GPUs, so the same binary falls back to CPU.
score() {
  local label=$1 expected=$2 log="$WORK/$1.log"
  shift 2
  if ! env "$@" dotnet "$CLI" score --model "$WORK/data/model.onnx" --input "$WORK/data/data.parquet" \
    --output "$WORK/$label.parquet" --batch-rows "$BATCH_ROWS" </dev/null >"$log" 2>&1; then
    cat "$log" >&2
    fail "the $label run failed"
  fi
  grep -q "on $expected" "$log" || fail "the $label run did not use $expected: $(grep -m 1 '^Model ' "$log" || tail -n 3 "$log")"
  rates[$label]="$(sed -n 's/^Scored .*(\([0-9,.]*\) rows\/s).*/\1/p' "$log" | tr -d ',')"
  [[ -n "${rates[$label]}" ]] || fail "no rows/s line in $log"
}

declare -A rates
say "scoring on CUDA"
score cuda CUDAExecutionProvider
say "scoring on CPU (CUDA_VISIBLE_DEVICES empty)"
score cpu CPUExecutionProvider CUDA_VISIBLE_DEVICES=

# 6. Same scores, within the tolerance.
say "comparing the scores (tolerance $TOLERANCE)"
dotnet run --file "$ROOT/tests/scripts/compare-scores.cs" -- "$WORK/cuda.parquet" "$WORK/cpu.parquet" score "$TOLERANCE" ||
  fail "CUDA and CPU scores differ by more than $TOLERANCE"

printf '\n%-8s %12s\n' provider 'rows/s'
printf '%-8s %12s\n' CUDA "${rates[cuda]}" CPU "${rates[cpu]}"
awk -v g="${rates[cuda]}" -v c="${rates[cpu]}" -v rows="$ROWS" -v batch="$BATCH_ROWS" \
  'BEGIN { if (c > 0) printf "CUDA/CPU: %.2fx (%s rows, batch %s; as timed by batchscore score, after the model load)\n", g / c, rows, batch }'
say "gpu-check passed"
[[ -n "${GPU_CHECK_DIR:-}" ]] || rm -rf "$WORK"
