#!/usr/bin/env bash
# The .NET tool as a user gets it (docs/cli.md, "Install"), run by .ci/run: `dotnet pack` the CLI into a temporary
# folder, `dotnet tool install --tool-path` from it, then run the installed `batchscore`: --version, generate and
# score (the ONNX Runtime native library must load from the tool's layout), --json output, and bash completion.
# The pack makes one package per platform (docs/cli.md, "Install"): on linux-x64 the precompiled (ReadyToRun) package
# must be the one installed, and the portable `any` package, which every other platform gets, must run too.
#
#   tests/scripts/test-tool-install.sh      exit 0 when every check passed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { printf 'test-tool-install: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'test-tool-install: ok: %s\n' "$*" >&2; }

WORK="$(mktemp -d /tmp/batchscore-tool-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

# Its own artifacts folder: the solution's bin/obj (Debug build of the tests) stay untouched.
dotnet pack "$ROOT/src/BatchScoring.Cli" -c Release -o "$WORK/feed" --artifacts-path "$WORK/artifacts" -nologo -v quiet \
  || fail "dotnet pack failed"
package="$(find "$WORK/feed" -name 'BatchScoring.Cli.[0-9]*.nupkg' | head -n 1)"
[[ -n "$package" ]] || fail "no BatchScoring.Cli package in $WORK/feed: $(ls "$WORK/feed")"
version="$(basename "$package" .nupkg)"; version="${version#BatchScoring.Cli.}"
for rid in linux-x64 any; do
  [[ -f "$WORK/feed/BatchScoring.Cli.$rid.$version.nupkg" ]] || fail "no $rid package next to $(basename "$package"): $(ls "$WORK/feed")"
done
pass "packed $(basename "$package") with its linux-x64 and any packages"
# The feed and nuget.org show the package's readme: the tool's own page, not the repository's.
unzip -p "$package" README.md | grep -q '^# batchscore' || fail "$(basename "$package") has no README.md (PackageReadme.md) at its root"
pass "the package carries its readme"

dotnet tool install BatchScoring.Cli --version "$version" --tool-path "$WORK/tools" --add-source "$WORK/feed" >/dev/null \
  || fail "dotnet tool install failed"
batchscore="$WORK/tools/batchscore"
[[ -x "$batchscore" ]] || fail "$batchscore was not installed"
pass "installed into --tool-path"

reported="$("$batchscore" --version)"
[[ "$reported" == "$version"* ]] || fail "batchscore --version printed '$reported', expected $version"
pass "batchscore --version: $reported"

if [[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]]; then
  [[ -d "$WORK/tools/.store/batchscoring.cli/$version/batchscoring.cli.linux-x64" ]] \
    || fail "the linux-x64 package was not the one installed: $(ls "$WORK/tools/.store/batchscoring.cli/$version")"
  # Precompiled: the tool's own methods run without being JIT-compiled (a JIT-only build compiles ~100 of them here).
  DOTNET_JitStdOutFile="$WORK/jit.txt" DOTNET_JitDisasmSummary=1 "$batchscore" --version >/dev/null
  [[ -s "$WORK/jit.txt" ]] || fail "the runtime wrote no JIT summary (DOTNET_JitStdOutFile)"
  own="$(grep -c 'JIT compiled \(BatchScoring\.\|Program:\)' "$WORK/jit.txt" || true)"
  [[ "$own" == 0 ]] || fail "batchscore --version JIT-compiled $own of the tool's own methods: the linux-x64 package is not ReadyToRun"
  pass "linux-x64 package installed, precompiled (ReadyToRun)"
fi

# The portable package runs anywhere .NET does: run it as `dotnet batchscore.dll` from the unpacked package.
mkdir -p "$WORK/any" && (cd "$WORK/any" && unzip -q "$WORK/feed/BatchScoring.Cli.any.$version.nupkg")
portable="$WORK/any/tools/net10.0/any/batchscore.dll"
[[ -f "$portable" ]] || fail "the any package has no tools/net10.0/any/batchscore.dll"
[[ "$(dotnet "$portable" --version)" == "$version"* ]] || fail "the any package's batchscore --version failed"
pass "the portable any package runs (--version)"

# The packed tool starts with tiered compilation on (start-up), unlike the published service (ServiceRuntime.props).
runtimeconfig="$(find "$WORK/tools/.store" -name batchscore.runtimeconfig.json | head -n 1)"
grep -q '"System.Runtime.TieredCompilation": true' "$runtimeconfig" || fail "the tool's runtimeconfig does not enable tiered compilation: $(cat "$runtimeconfig")"
pass "tiered compilation on in the tool"

"$batchscore" generate --output-dir "$WORK/samples" --rows 2000 --features 4 --hidden 8 --json >"$WORK/generated.json" \
  || fail "batchscore generate failed"
model="$(sed -n 's/.*"model": "\(.*\)".*/\1/p' "$WORK/generated.json")"
data="$(sed -n 's/.*"data": "\(.*\)".*/\1/p' "$WORK/generated.json")"
[[ -f "$model" && -f "$data" ]] || fail "generate --json did not name the files it wrote: $(cat "$WORK/generated.json")"
"$batchscore" score --model-file "$model" --input "$data" --output-parquet "$WORK/scored.parquet" --key-column customer_id --json \
  >"$WORK/scored.json" 2>"$WORK/score.err" || fail "batchscore score failed: $(cat "$WORK/score.err")"
grep -q '"scoredRows": 2000' "$WORK/scored.json" || fail "score --json: $(cat "$WORK/scored.json")"
[[ -s "$WORK/scored.parquet" ]] || fail "score wrote no Parquet file"
pass "generate and score (ONNX Runtime) from the installed tool"

dotnet "$portable" score --model-file "$model" --input "$data" --output-parquet "$WORK/scored-any.parquet" --key-column customer_id --json \
  >"$WORK/scored-any.json" 2>"$WORK/score-any.err" || fail "score from the any package failed: $(cat "$WORK/score-any.err")"
grep -q '"scoredRows": 2000' "$WORK/scored-any.json" || fail "score --json from the any package: $(cat "$WORK/scored-any.json")"
pass "score (ONNX Runtime) from the portable any package"

"$batchscore" completion bash >"$WORK/batchscore.bash"
candidates="$(PATH="$WORK/tools:$PATH" bash --noprofile --norc -c "
  source '$WORK/batchscore.bash'
  COMP_LINE='batchscore jobs sta'; COMP_POINT=\${#COMP_LINE}; COMP_WORDS=(batchscore jobs sta); COMP_CWORD=2
  _batchscore_completions
  printf '%s\n' \"\${COMPREPLY[@]}\"")"
[[ "$candidates" == "status" ]] || fail "bash completion of 'batchscore jobs sta' gave '$candidates'"
pass "bash completion completes 'jobs sta' to 'status'"
