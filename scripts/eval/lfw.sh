#!/usr/bin/env bash
# Every zoo model through `diat eval lfw` on LFW's pairsDevTest.txt (1,000 pairs; issue 20), and
# the README's tables from the reports.
#   scripts/eval/lfw.sh LFW_DIR OUT [MODEL...]      (default: the five paper tasks' zoo models)
# Writes OUT/MODEL.json (the report), OUT/MODEL.png (a before/after sheet of whole eligible photos),
# OUT/MODEL.txt (the printed report) and OUT/tables.md. The pasted-back photos themselves go to
# OUT/MODEL/ only with KEEP_PHOTOS=1. The sheets show LFW's photos: they stay out of the
# repository (LFW is for research use). LIMIT=N evaluates the first N pairs only.
set -euo pipefail
lfw=$1 out=$2
shift 2
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mouth_open mouth_close eyeglasses_remove male_to_female older_to_younger)
here="$(cd "$(dirname "$0")/../.." && pwd)"
diat="${DIAT:-$(bash "$(dirname "$0")/../target-dir.sh")/release/diat}"
mkdir -p "$out"
for m in "${models[@]}"; do
  name=$(basename "$m")
  args=(eval lfw --model "$m" --lfw "$lfw" --json "$out/$name.json" --sheet "$out/$name.png")
  [ -z "${LIMIT:-}" ] || args+=(--limit "$LIMIT")
  [ "${KEEP_PHOTOS:-0}" != 1 ] || args+=(--out "$out/$name")
  echo "lfw.sh: $name" >&2
  # Exit 0 or 1 with a report (1: a photo was rejected under --strict, or none edited).
  DIAT_PROGRESS="${DIAT_PROGRESS:-none}" "$diat" "${args[@]}" | tee "$out/$name.txt"
done
python3 "$here/scripts/eval/lfw_tables.py" "$out"/*.json > "$out/tables.md"
echo "lfw.sh: tables in $out/tables.md" >&2
