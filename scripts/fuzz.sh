#!/usr/bin/env bash
# Fuzzes the parsers of outside bytes: each cargo fuzz target of fuzz/ (csv, weights,
# settings; their contracts are in fuzz/src/lib.rs) runs for SECONDS (default 60) from a copy
# of its committed seed corpus (fuzz/corpus/<target>/), so the seeds in git stay the few
# small files they are. Prints the executions of each target and exits non-zero if any found
# a crash (the input is in fuzz/artifacts/<target>/; add it to fuzz/corpus/<target>/ as
# regression-<what> once fixed, and tests/mutation.rs checks it from then on).
#
#   scripts/fuzz.sh          60 s per target
#   scripts/fuzz.sh 30       30 s per target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Without
# them it says so and runs the stable mutation test over the same parsers and contracts
# instead (`cargo test --release --test mutation`).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

case "${1:-60}" in
  -h | --help)
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *[!0-9]* | '')
    echo "fuzz: SECONDS must be a whole number (got ${1:-})" >&2
    exit 2
    ;;
esac
seconds="${1:-60}"
targets=(csv weights settings)

missing=""
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  missing="the nightly toolchain"
elif ! cargo fuzz --version >/dev/null 2>&1; then
  missing="cargo-fuzz (cargo install cargo-fuzz --locked)"
fi
if [ -n "$missing" ]; then
  echo "fuzz: $missing is not installed: running the stable mutation test over the same" \
    "parsers instead (cargo test --release --test mutation)"
  cargo test --release --test mutation -- --nocapture
  exit $?
fi

echo "fuzz: building the targets (cargo +nightly fuzz build)"
build_start=$SECONDS
if ! cargo +nightly fuzz build; then
  echo "fuzz: the fuzz targets do not build" >&2
  exit 1
fi
echo "fuzz: built in $((SECONDS - build_start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  cp fuzz/corpus/"$target"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  log="$work/$target.log"
  echo "fuzz: $target for $seconds s"
  # -timeout: an input that takes this long counts as a hang (a finding, like a crash).
  cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1
  status=$?
  # libFuzzer's last status line: "#123456 DONE cov: ... corp: ... exec/s: ..."
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -z "$execs" ] && execs=$(echo "$done_line" | sed -E 's/^#([0-9]+).*/\1/')
  [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  cov=$(echo "$done_line" | grep -oE 'cov: [0-9]+' | tr -dc '0-9')
  found=$(($(find "$corpus" -type f | wc -l) - seeds))
  if [ "$status" -eq 0 ]; then
    result="ok"
  else
    failed=1
    result="FAILED (exit $status)"
    echo "fuzz: $target found a problem:"
    # The panic (or sanitizer report, timeout, out-of-memory), then where the input is.
    grep -m 4 -A 4 -E 'panicked at|ERROR: |SUMMARY: |deadly signal|out-of-memory' "$log"
    sed -n '/^Failing input:/,/^Minimize test case with:/p' "$log" | grep -v '^Minimize'
  fi
  line="$target: ${execs:-?} executions in $seconds s, coverage ${cov:-?}, corpus +$found, $result"
  echo "fuzz: $line"
  summary+=("$line")
done

echo
echo "fuzz summary ($seconds s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
