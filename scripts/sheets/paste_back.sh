#!/usr/bin/env bash
# Before | replace | residual sheet of `diat apply --align` on real photos, and the share of each
# photo's pixels changed by more than 2 levels (README, "Real photos").
#   scripts/sheets/paste_back.sh MODEL PHOTO_DIR OUT [ROWS]
# The sheet is written to OUT/sheet.png; it shows the photos given, so it stays out of the
# repository when they are CelebA's (non-commercial research use only).
set -euo pipefail
model=$1 photos=$2 out=$3 rows=${4:-6}
here="$(cd "$(dirname "$0")/../.." && pwd)"
diat="${DIAT:-$(bash "$(dirname "$0")/../target-dir.sh")/release/diat}"
python="${PYTHON:-${DIAT_CACHE:-$HOME/.cache/diat}/torch-2.11.0/bin/python}"
mkdir -p "$out"
for mode in residual replace; do
  rm -rf "$out/$mode"
  DIAT_PROGRESS=none "$diat" apply --cpu --align --largest --model "$model" "$photos" \
    --out "$out/$mode" --paste "$mode" | tail -1
done
"$python" - "$photos" "$out" "$rows" <<'PY'
import os, sys
import numpy as np
from PIL import Image
photos, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sorted(os.listdir(os.path.join(out, "residual")))
src = {os.path.splitext(f)[0]: f for f in os.listdir(photos)}
changed = {"residual": [], "replace": []}
tiles = []
for i, n in enumerate(names):
    a = Image.open(os.path.join(photos, src[os.path.splitext(n)[0]])).convert("RGB")
    row = [a]
    for mode in ("replace", "residual"):
        b = Image.open(os.path.join(out, mode, n)).convert("RGB")
        d = np.abs(np.asarray(a, int) - np.asarray(b, int)).max(axis=2) > 2
        changed[mode].append(d.mean())
        row.append(b)
    if i < rows:
        tiles.append(row)
for mode, v in changed.items():
    print(f"{mode}: {len(v)} photos, pixels changed by more than 2 levels: median {100*np.median(v):.1f} %, max {100*max(v):.1f} %")
if tiles:
    h = 160
    scaled = [[t.resize((round(t.width * h / t.height), h), Image.BILINEAR) for t in r] for r in tiles]
    w = max(sum(t.width for t in r) for r in scaled)
    sheet = Image.new("RGB", (w, h * len(scaled)), (255, 255, 255))
    for y, r in enumerate(scaled):
        x = 0
        for t in r:
            sheet.paste(t, (x, y * h))
            x += t.width
    sheet.save(os.path.join(out, "sheet.png"))
    print("sheet (before | replace | residual):", os.path.join(out, "sheet.png"))
PY
