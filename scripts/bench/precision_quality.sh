#!/usr/bin/env bash
# Does bf16 training hold its quality? The demo pipeline (pipelines/demo/mouth_open.toml, or
# PIPELINE=…) trained with train.precision = fp32 and = bf16 for each of SEEDS, each scored by
# `diat eval synth --model` on the same 50 held-out synthetic faces; prints a table (success,
# PSNR inside/outside the mouth, training seconds) and the mean ± sd per precision.
#   scripts/bench/precision_quality.sh OUT [SEEDS]         (after `make demo`: its data is reused)
# Env: SYNTH (out/demo/synth), DATA (out/demo/prepared), PIPELINE, DIAT, PYTHON, LIMIT (50).
set -euo pipefail
out=$1 seeds=${2:-"1 2 3"}
here="$(cd "$(dirname "$0")/../.." && pwd)"
diat="${DIAT:-${CARGO_TARGET_DIR:-${DIAT_CACHE:-$HOME/.cache/diat}/target}/release/diat}"
python="${PYTHON:-${DIAT_CACHE:-$HOME/.cache/diat}/torch-2.11.0/bin/python}"
synth="$(realpath "${SYNTH:-$here/out/demo/synth}")"
data="$(realpath "${DATA:-$here/out/demo/prepared}")"
pipeline="${PIPELINE:-$here/pipelines/demo/mouth_open.toml}"
limit="${LIMIT:-50}"
mkdir -p "$out"
for seed in $seeds; do
  for precision in fp32 bf16; do
    run="$out/$precision-$seed"
    if [ ! -f "$run/final/complete.json" ]; then
      start=$(date +%s.%N)
      DIAT_PROGRESS=none "$diat" train --pipeline "$pipeline" --run-dir "$run" --resume \
        --set "task.data=\"$data\"" --set "train.seed=$seed" --set "train.precision=\"$precision\"" \
        >"$run.log" 2>&1 || { tail -20 "$run.log"; exit 1; }
      awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' >"$run.seconds"
    fi
    DIAT_PROGRESS=none "$diat" eval synth --data "$synth" --attr Mouth_Slightly_Open --direction add \
      --limit "$limit" --model "$run/final" --json "$run.eval.json" >/dev/null 2>&1
    echo "$precision seed $seed: trained in $(cat "$run.seconds") s"
  done
done
"$python" - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
def model_row(path):
    rows = json.load(open(path))["results"]
    return next(r for r in rows if r["transform"].startswith("model"))
print("| precision | seed | success | PSNR in mouth | PSNR outside | training s |")
print("|---|---:|---:|---:|---:|---:|")
summary = {}
for p in ("fp32", "bf16"):
    for s in seeds:
        r = model_row(f"{out}/{p}-{s}.eval.json")
        secs = float(open(f"{out}/{p}-{s}.seconds").read())
        vals = (100 * r["attribute_success"], r["inside_mask"]["psnr"], r["outside_mask"]["psnr"], secs)
        summary.setdefault(p, []).append(vals)
        print(f"| {p} | {s} | {vals[0]:.0f} % | {vals[1]:.2f} | {vals[2]:.2f} | {secs:.0f} |")
print()
for p, v in summary.items():
    cols = list(zip(*v))
    ms = [(statistics.mean(c), statistics.stdev(c) if len(c) > 1 else 0.0) for c in cols]
    print(f"{p}: success {ms[0][0]:.1f} ± {ms[0][1]:.1f} %, PSNR in {ms[1][0]:.2f} ± {ms[1][1]:.2f}, "
          f"outside {ms[2][0]:.2f} ± {ms[2][1]:.2f} dB, training {ms[3][0]:.0f} ± {ms[3][1]:.0f} s")
PY
