#!/usr/bin/env bash
# Does bf16 training hold its quality? The demo pipeline (pipelines/demo/mouth_open.toml, or
# PIPELINE=…) trained with train.precision = fp32 and = bf16 for each of SEEDS, each scored by
# `diat eval synth --model` on the same 50 held-out synthetic faces; prints a table (success,
# PSNR inside/outside the mouth, training seconds) and the mean ± sd per precision.
#   scripts/bench/precision_quality.sh OUT [SEEDS]         (after `make demo`: its data is reused)
# Env: SYNTH (out/demo/synth), DATA (out/demo/prepared), PIPELINE, DIAT, PYTHON, LIMIT (50).
# On real faces: FACES (a `diat align` folder of real CelebA faces) and CELEBA (their annotations)
# score each run with `diat eval real` (held-out identities, LIMIT faces, default 200) instead;
# DATA is then a `diat data prepare` output of real faces (README, "Real faces").
set -euo pipefail
out=$1 seeds=${2:-"1 2 3"}
here="$(cd "$(dirname "$0")/../.." && pwd)"
diat="${DIAT:-$(bash "$(dirname "$0")/../target-dir.sh")/release/diat}"
python="${PYTHON:-${DIAT_CACHE:-$HOME/.cache/diat}/torch-2.11.0/bin/python}"
synth="$(realpath "${SYNTH:-$here/out/demo/synth}")"
data="$(realpath "${DATA:-$here/out/demo/prepared}")"
pipeline="${PIPELINE:-$here/pipelines/demo/mouth_open.toml}"
faces="${FACES:-}" celeba="${CELEBA:-}"
if [ -n "$faces" ]; then limit="${LIMIT:-200}"; else limit="${LIMIT:-50}"; fi
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
    if [ -n "$faces" ]; then
      DIAT_PROGRESS=none "$diat" eval real --faces "$faces" --celeba "$celeba" --split test \
        --attr Mouth_Slightly_Open --direction add --limit "$limit" --model "$run/final" \
        --json "$run.eval.json" >/dev/null 2>&1
    else
      DIAT_PROGRESS=none "$diat" eval synth --data "$synth" --attr Mouth_Slightly_Open --direction add \
        --limit "$limit" --model "$run/final" --json "$run.eval.json" >/dev/null 2>&1
    fi
    echo "$precision seed $seed: trained in $(cat "$run.seconds") s"
  done
done
"$python" - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
def values(path):
    doc = json.load(open(path))
    if "conditions" in doc:  # diat eval real
        c = {x["condition"]: x for x in doc["conditions"]}
        m, b = c["model"], c["identity"]
        return (100 * m["attribute_success"], 100 * m["identity_kept"], m["mean_distance"],
                100 * b["attribute_success"])
    r = next(r for r in doc["results"] if r["transform"].startswith("model"))
    return (100 * r["attribute_success"], r["inside_mask"]["psnr"], r["outside_mask"]["psnr"])
real = "conditions" in json.load(open(f"{out}/fp32-{seeds[0]}.eval.json"))
names = (["success", "identity kept", "mean distance", "identity baseline"] if real
         else ["success", "PSNR in mouth", "PSNR outside"])
print("| precision | seed | " + " | ".join(names) + " | training s |")
print("|---|---:|" + "---:|" * (len(names) + 1))
summary = {}
for p in ("fp32", "bf16"):
    for s in seeds:
        vals = values(f"{out}/{p}-{s}.eval.json")
        secs = float(open(f"{out}/{p}-{s}.seconds").read())
        vals = vals + (secs,)
        summary.setdefault(p, []).append(vals)
        print(f"| {p} | {s} | " + " | ".join(f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}" for v in vals[:-1])
              + f" | {secs:.0f} |")
print()
for p, v in summary.items():
    cols = list(zip(*v))
    ms = [(statistics.mean(c), statistics.stdev(c) if len(c) > 1 else 0.0) for c in cols]
    print(f"{p}: " + ", ".join(f"{n} {m:.2f} ± {sd:.2f}" for n, (m, sd) in zip(names + ["training s"], ms)))
PY
