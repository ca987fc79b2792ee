#!/usr/bin/env bash
# GPU check: one command for a machine with a real GPU (a few minutes there). Builds once
# (`cargo build --release`), then
#   1. runs the tests that need a wgpu adapter (tests/gpu_*.rs and every test file that opens
#      a device: `gpu_common`, `GpuContext`, egui_kittest's `.wgpu()`), with no skip switch;
#   2. `diffusion-playground bench --backend wgpu`: training at batch 16k and 64k, PF-ODE Euler
#      sampling of 1M particles;
#   3. the app in a virtual X window (Xvfb) for 20 s (`--exit-after 20`), which must exit 0;
# and prints one markdown table: the adapter and each figure. Exits non-zero if any part fails
# (every part still runs, so the table is complete).
#
#   scripts/gpu-check.sh           full sizes; the adapter must be a GPU, not a CPU rasteriser
#   scripts/gpu-check.sh --quick   small sizes, any adapter (CI runs it on lavapipe)
#
# Needs a Vulkan driver (Linux; without a GPU: apt-get install mesa-vulkan-drivers libvulkan1)
# and, for the app, xvfb-run (apt-get install xvfb xauth) or a display.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h | --help)
      sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "gpu-check: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

if [ "$quick" -eq 1 ]; then
  batches=256,1024
  particles=10000
  mode="quick"
else
  batches=16384,65536
  particles=1000000
  mode="full"
fi
app_seconds=20

bin=target/release/diffusion-playground
logs=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
# The GPU tests fail, not skip, without an adapter.
unset DIFFUSION_PLAYGROUND_SKIP_GPU
failed=0
start_all=$SECONDS
rows=() # "| part | result |" lines, in order

row() { rows+=("| $1 | $2 |"); }
fail() {
  failed=1
  row "$1" "**FAIL**: $2"
}
# The last lines of a log, indented, on stderr (for a part that failed).
show_tail() {
  echo "---- last lines of $1 ----" >&2
  tail -n "${2:-30}" "$1" | sed 's/^/    /' >&2
}
secs() { echo "$((SECONDS - $1)) s"; }
# 1234567.8 → "1.23 M"
human() {
  awk -v x="$1" 'BEGIN {
    if (x >= 1e9) printf "%.2f G", x / 1e9; else if (x >= 1e6) printf "%.2f M", x / 1e6;
    else if (x >= 1e3) printf "%.1f k", x / 1e3; else printf "%.0f", x }'
}
# A string or a number field of one JSON line from `bench --json`.
field_str() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }
field_num() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([-+.eE0-9]*\).*/\1/p"; }
# "`bench --json`'s adapter string" → whether it names a CPU rasteriser (lavapipe, llvmpipe).
is_cpu_adapter() { case "$1" in *", cpu)") return 0 ;; *) return 1 ;; esac; }

# ---- build ---------------------------------------------------------------------------------
echo "== gpu-check ($mode): building (logs in $logs)" >&2
t=$SECONDS
gpu_tests=$(
  {
    ls tests/gpu_*.rs
    grep -lE 'mod gpu_common|GpuContext|\.wgpu\(\)' tests/*.rs
  } 2>/dev/null | sort -u | sed 's|^tests/||; s|\.rs$||'
)
test_args=()
for t_name in $gpu_tests; do test_args+=(--test "$t_name"); done
if ! cargo build --release 2>"$logs/build.log"; then
  show_tail "$logs/build.log" 40
  fail "build" "\`cargo build --release\` ($(secs "$t"))"
  build_ok=0
elif ! cargo test --release --no-run "${test_args[@]}" 2>"$logs/build-tests.log"; then
  show_tail "$logs/build-tests.log" 40
  fail "build" "\`cargo test --release --no-run\` of the GPU tests ($(secs "$t"))"
  build_ok=0
else
  row "build" "ok ($(secs "$t"))"
  build_ok=1
fi

if [ "$build_ok" -eq 1 ]; then
  # ---- GPU tests ---------------------------------------------------------------------------
  n_files=$(echo "$gpu_tests" | wc -w)
  echo "== gpu-check: $n_files GPU test files: $(tr '\n' ' ' <<<"$gpu_tests")" >&2
  t=$SECONDS
  if timeout 900 cargo test --release --no-fail-fast "${test_args[@]}" >"$logs/tests.log" 2>&1; then
    status=ok
  else
    status=fail
  fi
  passed=$(sed -n 's/^test result: .* \([0-9]*\) passed.*/\1/p' "$logs/tests.log" | awk '{s += $1} END {print s + 0}')
  nfailed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$logs/tests.log" | awk '{s += $1} END {print s + 0}')
  if [ "$status" = ok ]; then
    row "GPU tests ($n_files files)" "ok: $passed passed ($(secs "$t"))"
  else
    grep -E '^(test .* FAILED|failures:|---- )' "$logs/tests.log" >&2 || true
    show_tail "$logs/tests.log" 40
    fail "GPU tests ($n_files files)" "$passed passed, $nfailed failed ($(secs "$t"))"
  fi

  # ---- bench -------------------------------------------------------------------------------
  echo "== gpu-check: bench --backend wgpu --batches $batches --particles $particles" >&2
  t=$SECONDS
  adapter=""
  bench_complete=1
  if timeout 600 "$bin" bench --backend wgpu --json --batches "$batches" --particles "$particles" \
    >"$logs/bench.json" 2>"$logs/bench.log"; then
    bench_ok=1
  else
    rc=$?
    bench_ok=0
    show_tail "$logs/bench.log" 20
    fail "bench" "exit $rc ($(secs "$t"))"
  fi
  cat "$logs/bench.log" >&2
  if [ "$bench_ok" -eq 1 ] && ! grep -q '"backend":"wgpu"' "$logs/bench.json"; then
    # Without a usable adapter `bench --backend wgpu` measures on the CPU instead and says
    # why on stderr (its first line).
    bench_ok=0
    fail "bench" "no wgpu figures: $(head -n 1 "$logs/bench.log")"
  fi
  for kind in train sample; do
    if [ "$kind" = train ]; then sizes=$batches; else sizes=$particles; fi
    for size in ${sizes//,/ }; do
      line=$(grep '"backend":"wgpu"' "$logs/bench.json" | grep "\"kind\":\"$kind\"" |
        grep -E "\"size\":${size}[,}]" | head -n 1)
      if [ "$kind" = train ]; then
        what="train, batch $size"
        unit="samples/s"
      else
        what="PF-ODE Euler sampling, $size particles"
        unit="particle-steps/s"
      fi
      if [ -z "$line" ]; then
        if [ "$bench_ok" -eq 1 ]; then
          bench_complete=0
          fail "$what" "no figure in the output of \`bench --json\`"
        fi
        continue
      fi
      [ -z "$adapter" ] && adapter=$(field_str "$line" adapter)
      per_s=$(field_num "$line" per_s)
      gflops=$(field_num "$line" gflops)
      row "$what" "$(human "$per_s") $unit ($(printf '%.1f' "$gflops") GFLOP/s)"
    done
  done
  [ "$bench_ok$bench_complete" = 11 ] && row "bench (all sizes)" "ok ($(secs "$t"))"

  # ---- the app -----------------------------------------------------------------------------
  echo "== gpu-check: the app for ${app_seconds} s" >&2
  t=$SECONDS
  app=("$bin" --exit-after "$app_seconds")
  if command -v xvfb-run >/dev/null; then
    runner=(xvfb-run -a -s '-screen 0 1280x800x24')
    where="under Xvfb"
  elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    runner=()
    where="on the display"
  else
    runner=(false)
    where="(no xvfb-run and no display: apt-get install xvfb xauth)"
  fi
  if timeout $((app_seconds + 60)) "${runner[@]}" "${app[@]}" >"$logs/app.log" 2>&1; then
    # Its last words: frames, mean frame time, training steps.
    summary=$(sed -n 's/^diffusion-playground: //p' "$logs/app.log" | tail -n 1)
    row "app $where, \`--exit-after $app_seconds\`" "ok: exit 0${summary:+; $summary} ($(secs "$t"))"
  else
    rc=$?
    show_tail "$logs/app.log" 30
    fail "app $where, \`--exit-after $app_seconds\`" "exit $rc ($(secs "$t"))"
  fi
fi

# ---- the adapter ---------------------------------------------------------------------------
if [ -z "${adapter:-}" ]; then
  adapter_row="unknown (no wgpu figure)"
  failed=1
elif [ "$quick" -eq 0 ] && is_cpu_adapter "$adapter"; then
  adapter_row="**FAIL**: $adapter is a CPU rasteriser, not a GPU (use --quick without one)"
  failed=1
else
  adapter_row="$adapter"
fi

# ---- the table -----------------------------------------------------------------------------
if [ "$failed" -eq 0 ]; then verdict="ok"; else verdict="**FAILED**"; fi
echo
echo "### gpu-check ($mode): $verdict"
echo
echo "| part | result |"
echo "| --- | --- |"
echo "| adapter | $adapter_row |"
printf '%s\n' "${rows[@]}"
echo "| total | $(secs "$start_all") |"
echo
echo "Logs: $logs" >&2
exit "$failed"
