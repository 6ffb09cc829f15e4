#!/usr/bin/env bash
# λ sweep of a local pipeline on synthetic faces, scored against exact counterfactuals.
#
#   scripts/sweep-lambda.sh PIPELINE PREPARED SYNTH OUT LAMBDA...
#
# PIPELINE  a pipeline file (e.g. pipelines/demo/mouth_open.toml)
# PREPARED  its `diat data prepare` output; SYNTH the `diat data synth` dataset it came from
# OUT       one run directory per λ (the pre-training stages are trained once and shared)
#
# Writes OUT/sweep.md: per λ, attribute success and PSNR (in/out of the mask) of T(x) alone and of
# the enhanced output, beside the identity and counterfactual baselines at the model's resolution.
set -euo pipefail
[[ $# -ge 5 ]] || { sed -n 2,10p "$0"; exit 2; }
pipeline=$1 prepared=$2 synth=$3 out=$4; shift 4
here=$(cd "$(dirname "$0")/.." && pwd)
diat=${DIAT:-$(bash "$(dirname "$0")/target-dir.sh")/release/diat}
[[ -x $diat ]] || { echo "no diat binary at $diat (make build, or set DIAT)" >&2; exit 1; }
attr=$(grep -m1 '^name' "$pipeline" | sed 's/.*"\(.*\)".*/\1/')
case $attr in
  mouth_open) eattr=Mouth_Slightly_Open dir=add ;;
  mouth_close) eattr=Mouth_Slightly_Open dir=remove ;;
  eyeglasses_remove) eattr=Eyeglasses dir=remove ;;
  *) echo "no synthetic evaluation for task $attr" >&2; exit 1 ;;
esac
mkdir -p "$out"
first=""
rows=()
for l in "$@"; do
  run=$out/lambda-$l
  if [[ -n $first && ! -e $run/resolved.toml ]]; then
    mkdir -p "$run/stages"
    cp -r "$first/stages/pretrain_t" "$first/stages/pretrain_d" "$run/stages/"
  fi
  echo "== λ = $l ($run)" >&2
  "$diat" train --pipeline "$pipeline" --run-dir "$run" --resume \
    --set "task.data=\"$(cd "$prepared" && pwd)\"" --set "stages.adversarial.lambda=$l" >&2
  first=${first:-$run}
  "$diat" eval synth --data "$synth" --attr "$eattr" --direction "$dir" --limit 100 \
    --model "$run/final" --json "$run/eval.json" >&2
  rows+=("$l" "$run/eval.json")
done
python3 - "$out/sweep.md" "${rows[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
lines = ["| λ | T(x) success | T(x) PSNR in / out | output success | output PSNR in / out |",
         "|---|---|---|---|---|"]
base = None
for i in range(0, len(rows), 2):
    lam, path = rows[i], rows[i + 1]
    r = {x["transform"].strip(): x for x in json.load(open(path))["results"]}
    model = next(v for k, v in r.items() if k.startswith("model"))
    t = r["T(x) only"]
    f = lambda x: f"{x['inside_mask']['psnr']:.2f} / {x['outside_mask']['psnr']:.2f}"
    lines.append(f"| {lam} | {100*t['attribute_success']:.0f}% | {f(t)} | "
                 f"{100*model['attribute_success']:.0f}% | {f(model)} |")
    base = base or [v for k, v in r.items() if " @ " in k]
for b in base or []:
    lines.append(f"| {b['transform']} | | | {100*b['attribute_success']:.0f}% | "
                 f"{b['inside_mask']['psnr']:.2f} / {b['outside_mask']['psnr']:.2f} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
