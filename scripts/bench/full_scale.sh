#!/usr/bin/env bash
# Full-scale ingestion benchmark without the full image set: a CelebA root whose 202,599 image
# entries are symlinks cycling over the 32 real aligned JPEGs, with the real full attribute,
# identity and partition files and a landmark file that cycles the 32 real landmark rows.
# Times `diat data index` and `diat data sets --pretrain` (all 162,770 training images decoded,
# cropped, resized and packed) and reports peak memory (GNU time).
#   usage: scripts/bench/full_scale.sh [SAMPLES=../shared/celeba] [WORK=/tmp/diat-full-scale]
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=$(realpath "${1:-../shared/celeba}")
work=${2:-/tmp/diat-full-scale}
diat=${DIAT:-$(bash scripts/target-dir.sh)/release/diat}
root=$work/celeba
if [ ! -f "$root/.complete" ]; then
  rm -rf "$root"; mkdir -p "$root/Anno" "$root/Eval" "$root/Img/img_align_celeba"
  cp "$samples/Anno/list_attr_celeba.txt" "$samples/Anno/identity_CelebA.txt" "$root/Anno/"
  cp "$samples/Eval/list_eval_partition.txt" "$root/Eval/"
  python3 - "$samples" "$root" <<'PY'
import os, sys
s, r = sys.argv[1], sys.argv[2]
L = [l for l in open(f"{s}/Anno/list_landmarks_align_celeba.txt", newline="").read().split("\r\n") if l]
rows = [l.split()[1:] for l in L[2:]]
with open(f"{r}/Anno/list_landmarks_align_celeba.txt", "w", newline="") as f:
    f.write(f"202599\r\n{L[1]}\r\n")
    for i in range(202599):
        f.write(f"{i+1:06}.jpg " + " ".join(f"{int(v):4d}" for v in rows[i % 32]) + "\r\n")
d = f"{r}/Img/img_align_celeba"
for i in range(202599):
    os.symlink(f"{s}/Img/img_align_celeba/{i % 32 + 1:06}.jpg", f"{d}/{i+1:06}.jpg")
PY
  touch "$root/.complete"
fi
out=$work/out
rm -rf "$out"
echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
/usr/bin/time -f "index: %e s wall, peak RSS %M KB" "$diat" data index "$root" --out "$out"
/usr/bin/time -f "sets eyeglasses_remove + pretrain (162,770 images): %e s wall, peak RSS %M KB" \
  "$diat" data sets --out "$out" --task eyeglasses_remove --pretrain --no-cluster-filter >/dev/null
du -sh "$out/pretrain"
