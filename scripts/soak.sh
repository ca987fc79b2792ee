#!/usr/bin/env bash
# Soak: the real app under Xvfb for N minutes, driving itself (`--drill`): every few seconds it
# changes the dataset, schedule, process, sampler, step count, SDE/ODE, particle count, flow grid
# or score, saves and reloads its weights, or exports a PNG or CSV. Once a minute the app prints a `soak`
# line; this script turns them into a table and fails on
#   - a panic, a crash of the training job, or a non-zero exit;
#   - a number the UI shows that is NaN or infinite;
#   - resident memory growing by more than --max-growth MiB from the first full minute to
#     the end (default 200: the app holds at most one run's frames, 96 MiB, plus the GPU
#     copies of a reverse run, so a leak of a few MiB a minute shows within 30 minutes);
#   - a stall: no new frames, or no training step, between two reports (unless paused).
# usage: scripts/soak.sh [--minutes N] [--every SECS] [--max-growth MIB]
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=30 every=3 max_growth=200
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --max-growth) max_growth=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
done

bin=${SOAK_BIN:-target/release/diffusion-playground}
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/app.log
secs=$(( minutes * 60 ))
echo "soak: $minutes min, one change every ${every}s, files in $work" >&2
set +e
XDG_DATA_HOME=$work/data xvfb-run -a -s '-screen 0 1280x800x24' \
  "$bin" --drill "$every" --drill-dir "$work/files" --exit-after "$secs" >"$log" 2>&1
rc=$?
set -e
mkdir -p ci-artifacts && cp "$log" ci-artifacts/soak.log

python3 - "$log" "$rc" "$max_growth" <<'PY'
import json, sys
log, rc, max_growth = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lines = open(log, errors="replace").read().splitlines()
rows = [json.loads(l[5:]) for l in lines if l.startswith("soak {")]
fail = []
if rc != 0:
    fail.append(f"the app exited with code {rc}")
for l in lines:
    if "panicked" in l:
        fail.append("panic: " + l.strip()[:200])
print("| min | RSS MiB | frame ms | frames | training step | samples/s | actions | finite |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['secs']/60:.1f} | {r['rss_mb'] or 0:.0f} | {r['frame_ms']:.1f} | {r['frames']} | "
          f"{r['step']} | {r['samples_per_s']:.0f} | {r['actions']} | {r['finite']} |")
    if not r["finite"]:
        fail.append(f"a non-finite number on screen at {r['secs']:.0f} s")
    if r.get("crashed"):
        fail.append(f"training crashed: {r['crashed']}")
for a, b in zip(rows, rows[1:]):
    if b["frames"] <= a["frames"]:
        fail.append(f"no new frames between {a['secs']:.0f} s and {b['secs']:.0f} s")
    if b["step"] == a["step"] and not b["paused"]:
        fail.append(f"training stalled at step {b['step']} ({b['secs']:.0f} s)")
full = [r for r in rows if r["secs"] >= 60 and r["rss_mb"] is not None]
if len(full) >= 2:
    growth = full[-1]["rss_mb"] - full[0]["rss_mb"]
    print(f"\nRSS {full[0]['rss_mb']:.0f} MiB at {full[0]['secs']/60:.0f} min, "
          f"{full[-1]['rss_mb']:.0f} MiB at the end: {growth:+.0f} MiB (bound {max_growth:.0f})")
    if growth > max_growth:
        fail.append(f"memory grew by {growth:.0f} MiB (> {max_growth:.0f})")
if len(rows) < 2:
    fail.append(f"only {len(rows)} soak reports: did the drill run?")
if fail:
    print("\nsoak FAILED:\n  " + "\n  ".join(dict.fromkeys(fail)))
    sys.exit(1)
print("\nsoak passed")
PY
