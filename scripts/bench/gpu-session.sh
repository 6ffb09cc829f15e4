#!/usr/bin/env bash
# Every GPU measurement of the README in one run, for a borrowed GPU machine with torch 2.11 and
# no Rust (build here with `make gpu-bundle`, carry .device, run this from the repository root):
#
#   OUT=/some/dir bash scripts/bench/gpu-session.sh       # on the GPU machine
#   QUICK=1 OUT=/tmp/gs bash scripts/bench/gpu-session.sh # tiny sizes: checks the script on a CPU
#
# 1. doctor (device, libtorch, cuDNN)
# 2. networks: `diat bench nets` (levers, then --plain) and scripts/bench/bench_nets.py (plain
#    eager, then --levers) back to back: T forward at batch 1/64/256 fp32+bf16, DIAT-A step at 64
# 3. loader: synthetic faces → `diat data prepare` at 128 px → `diat bench loader` and
#    scripts/bench/bench_loader.py (PyTorch DataLoader) on the same stores
# 4. training: `diat train` of pipelines/mouth_open.toml (paper sizes, DIAT-A) on those faces with
#    short stages; metrics.jsonl gives step/s (× batch = the input-image rate of the DIAT-A step)
#    and the loader's img/s with the real loader in the loop
# 5. $OUT/summary.md: the numbers the README's tables need, with the card's name
#
# Steps keep going after a failure (each is bounded by `timeout`, all together by BUDGET seconds,
# default 540); rc and time are in
# $OUT/session.log, each step's full output in $OUT/<step>.txt. Data and the run directory go
# to $WORK (default: a new folder under $TMPDIR).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/out/gpu-session}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
DIAT=${DIAT:-$root/.device/bin/diat-gpu}
if [ -z "${PY:-}" ]; then
  for cand in /opt/torch/.venv/bin/python "${DIAT_TORCH_PYTHON:-}" "$HOME/.cache/diat/torch-2.11.0/bin/python"; do
    [ -n "$cand" ] && [ -x "$cand" ] && { PY=$cand; break; }
  done
fi
PY=${PY:-python3}
QUICK=${QUICK:-0}
# Data and the run directory stay outside $OUT (hundreds of MB); only reports go there.
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/diat-gpu-session.XXXXXX")}
mkdir -p "$work"
: >"$OUT/session.log"

if [ "$QUICK" = 1 ]; then
  nets=(--device auto --width 0.25 --image-size 64 --batches 1,16 --step-batch 16 --min-time 0.5 --threads 1)
  faces=1500 size=64 loader_iters=40
  pipeline=pipelines/demo/mouth_open.toml
  train_set=(--set stages.pretrain_t.steps=20 --set stages.pretrain_d.steps=10
             --set stages.adversarial.steps=40 --set stages.enhance.steps=10 --set train.log_every=10)
else
  nets=(--device auto)
  faces=10000 size=128 loader_iters=300
  pipeline=pipelines/mouth_open.toml
  train_set=(--set stages.pretrain_t.steps=300 --set stages.pretrain_d.steps=100
             --set stages.adversarial.steps=1500 --set stages.enhance.steps=200
             --set train.log_every=50 --set train.sample_every=500 --set train.checkpoint_every=1000)
fi

# The whole session must end (summary written) within BUDGET seconds: a borrowed machine's
# command limit is 600 s. Each step gets its own limit, cut to what the budget has left.
BUDGET=${BUDGET:-540}
log() { echo "$*" | tee -a "$OUT/session.log"; }
# step NAME LIMIT_S CMD...: runs CMD with a time limit, output to $OUT/NAME.txt, keeps going.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - 25 - SECONDS))
  if [ "$left" -lt 15 ]; then
    log "== $name: skipped (session budget of $BUDGET s spent)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "== $name (limit ${limit} s): $*"
  local t0=$SECONDS
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  log "   $name: rc=$rc in $((SECONDS - t0)) s"
  tail -n 15 "$OUT/$name.txt"
  return 0
}

log "gpu-session $(date -u +%FT%TZ) quick=$QUICK diat=$DIAT python=$PY"
log "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); data and run: $work"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/nvidia-smi.txt" 2>&1
step doctor 120 "$DIAT" doctor --json

step nets-diat 300 "$DIAT" bench nets "${nets[@]}" --json "$OUT/nets-diat.json"
step nets-diat-plain 300 "$DIAT" bench nets "${nets[@]}" --plain --json "$OUT/nets-diat-plain.json"
step nets-torch 300 "$PY" scripts/bench/bench_nets.py "${nets[@]}" --json "$OUT/nets-torch.json"
step nets-torch-levers 300 "$PY" scripts/bench/bench_nets.py "${nets[@]}" --levers --json "$OUT/nets-torch-levers.json"

step synth 300 "$DIAT" data synth --count "$faces" --out "$work/synth"
step prepare 300 "$DIAT" data prepare "$work/synth" --out "$work/prepared" --task mouth_open --k 8 \
  --size "$size" --pretrain --pretrain-limit 4000
step loader-diat 300 "$DIAT" bench loader --data "$work/prepared" --threads 1,2,4 \
  --iters "$loader_iters" --json "$OUT/loader-diat.json"
step loader-torch 300 "$PY" scripts/bench/bench_loader.py --data "$work/prepared" --threads 1,2,4 \
  --iters "$loader_iters" --json "$OUT/loader-torch.json"

step train 600 "$DIAT" train --pipeline "$pipeline" --run-dir "$work/run" \
  --set "task.data=$work/prepared" --set model.image_size="$size" \
  --set stages.enhance.features=discriminator "${train_set[@]}"
cp "$work/run/metrics.jsonl" "$work/run/run.json" "$work/run/resolved.toml" "$OUT/" 2>/dev/null
cp "$work/run/loss_curve.png" "$OUT/" 2>/dev/null
last_grid=$(ls "$work"/run/samples/adversarial-step-*.png 2>/dev/null | tail -1)
[ -n "$last_grid" ] && cp "$last_grid" "$OUT/adversarial-samples.png"

"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
print("# GPU session summary\n")
try:
    print("GPU:", open(os.path.join(out, "nvidia-smi.txt")).read().strip() or "(nvidia-smi said nothing)")
except OSError:
    print("GPU: no nvidia-smi")
reports = [(n, load(n + ".json")) for n in ("nets-diat", "nets-diat-plain", "nets-torch", "nets-torch-levers")]
for n, r in reports:
    if r:
        print(f"\n{n}: {r['implementation']} on {r['device']} — {r['settings']}")
print("\n| measurement | batch | precision | " + " | ".join(n for n, _ in reports) + " |")
print("|---|---:|---|" + "---:|" * len(reports))
keys = []
for _, r in reports:
    for row in (r or {}).get("results", []):
        k = (row["what"], row["batch"], row["kind"])
        if k not in keys:
            keys.append(k)
for k in keys:
    cells = []
    for _, r in reports:
        v = next((row["img_per_s"] for row in (r or {}).get("results", [])
                  if (row["what"], row["batch"], row["kind"]) == k), None)
        cells.append(f"{v:,.0f}" if v else "—")
    print(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(cells) + " |")
ld, lt = load("loader-diat.json"), load("loader-torch.json")
if ld:
    print(f"\nloader ({ld['settings']}), img/s delivered to {ld['device']}:\n")
    print("| workers | diat | diat workers alone | PyTorch DataLoader |\n|---:|---:|---:|---:|")
    for row in ld["results"]:
        t = next((p["img_per_s"] for p in (lt or {}).get("results", []) if p["threads"] == row["threads"]), None)
        cap = row.get("worker_capacity_img_per_s") or 0
        print(f"| {row['threads']} | {row['img_per_s']:,.0f} | {cap:,.0f} | " + (f"{t:,.0f}" if t else "—") + " |")
try:
    lines = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
except OSError:
    lines = []
adv = [l for l in lines if l.get("stage") == "adversarial"]
if adv:
    run = load("run.json") or {}
    batch = 64
    try:
        import tomllib
        batch = tomllib.load(open(os.path.join(out, "resolved.toml"), "rb"))["train"]["batch"]
    except Exception:
        pass
    steady = adv[1:] or adv  # the first window holds start-up and cuDNN autotuning
    sps = sorted(l["step_per_s"] for l in steady)
    med = sps[len(sps) // 2]
    ld_ips = sorted(l.get("loader_img_per_s", 0) for l in steady)
    print(f"\ntraining (diat train, adversarial stage, {len(adv)} log windows, device {run.get('device', '?')}):")
    print(f"  median {med:.2f} steps/s = {med * batch:,.0f} input img/s at batch {batch} "
          f"(min {sps[0] * batch:,.0f}, max {sps[-1] * batch:,.0f}); all images read: "
          f"{sorted(l['img_per_s'] for l in steady)[len(steady) // 2]:,.0f} img/s; "
          f"loader capacity {ld_ips[len(ld_ips) // 2]:,.0f} img/s")
    last = adv[-1]
    print("  last losses: " + ", ".join(f"{k[5:]} {v:.4g}" for k, v in last.items() if k.startswith("loss_")))
EOF
log "done: $OUT/summary.md"
