#!/usr/bin/env bash
# The whole-photo path of `diat eval lfw` (decode, detect, align, edit, paste back, write PNG)
# beside its Python peer (scripts/bench/lfw_path.py: facenet-pytorch's MTCNN, the model in PyTorch
# from diat's safetensors, PIL paste-back), in one run, on the same LFW photos, the same threads
# and the same batch; prints photos/s and the seconds in each stage, side by side (issue 20).
#   scripts/bench/lfw_path.sh LFW_DIR OUT [MODEL_DIR] [PAIRS]
# MODEL_DIR: a model folder (default: zoo/models/mouth_open/0.1.0, shipped in the repository);
# PAIRS: pairs of pairsDevTest.txt whose photos are used (default 100: ~190 photos).
# Env: THREADS (1), BATCH (32), DIAT, PYTHON.
set -euo pipefail
lfw=$1 out=$2
here="$(cd "$(dirname "$0")/../.." && pwd)"
model=${3:-$here/zoo/models/mouth_open/0.1.0}
pairs=${4:-100}
threads=${THREADS:-1} batch=${BATCH:-32}
diat="${DIAT:-$(bash "$(dirname "$0")/../target-dir.sh")/release/diat}"
python="${PYTHON:-${DIAT_TORCH_PYTHON:-${DIAT_CACHE:-$HOME/.cache/diat}/torch-2.11.0/bin/python}}"
mkdir -p "$out"
rm -rf "$out/diat" "$out/peer"
echo "lfw_path.sh: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $threads thread(s), batch $batch" >&2
DIAT_PROGRESS=none OMP_NUM_THREADS=$threads "$diat" eval lfw --model "$model" --lfw "$lfw" \
  --limit "$pairs" --threads "$threads" --batch "$batch" --out "$out/diat" --json "$out/diat.json" \
  --device cpu >/dev/null
# The same photos, in the same order, for the peer.
python3 - "$out/diat.json" "$lfw" > "$out/photos.txt" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
images = r["images"]
for s in r["photos_scored"]:
    stem = s["photo"]
    print(os.path.join(images, stem[:-5], stem + ".jpg"))
for x in r["rejected"]:
    print(x["source"])
PY
OMP_NUM_THREADS=$threads "$python" "$here/scripts/bench/lfw_path.py" --model "$model" \
  --photos "$out/photos.txt" --out "$out/peer" --threads "$threads" --batch "$batch" \
  --json "$out/peer.json" >/dev/null
python3 - "$out/diat.json" "$out/peer.json" <<'PY'
import json, sys
d, p = (json.load(open(f)) for f in sys.argv[1:3])
dt, pt = d["times"], p["times"]
n = d["photos"]
print(f"{n} photos ({d['photos_edited']} edited by diat, {p['edited']} by the peer)")
print("| stage | diat s | peer s | peer / diat |")
print("|---|---:|---:|---:|")
for k in ("decode", "detect", "align", "edit", "paste", "write", "path"):
    ratio = pt[k] / dt[k] if dt[k] > 0 else float("nan")
    print(f"| {k} | {dt[k]:.2f} | {pt[k]:.2f} | {ratio:.2f}× |")
print(f"| photos/s | {dt['photos_per_second']:.2f} | {p['photos_per_second']:.2f} | "
      f"diat {dt['photos_per_second'] / p['photos_per_second']:.2f}× |")
print(f"peer: {p['peer']}")
PY
