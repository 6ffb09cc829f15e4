#!/usr/bin/env bash
# MTCNN face-detector weights for `diat align` / `diat apply --align` (paper §5.4: every test photo
# is aligned by 5 facial landmarks first). Idempotent; called at the end of scripts/setup.sh.
#
# The published P/R/O-Net weights ship inside the facenet-pytorch 2.6.0 wheel on PyPI
# (facenet_pytorch/data/{pnet,rnet,onet}.pt). This script downloads that wheel with pip (no
# dependencies, nothing installed), checks its sha256, extracts the three state dicts, converts them
# with scripts/mtcnn/convert.py into diat safetensors checkpoints and checks their sha256. Nothing is
# fetched at run time: diat only reads the converted files.
#
# Destination: $DIAT_MTCNN_DIR, else $DIAT_CACHE_DIR/mtcnn, else $DIAT_HOME/cache/mtcnn (DIAT_HOME
# default $XDG_CACHE_HOME/diat, else ~/.cache/diat) — the rules of crates/diat-common/src/dirs.rs.
# The wheel is kept there too (scripts/mtcnn/reference.py, the Python reference of the parity test,
# imports facenet-pytorch's detection code from it).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL=facenet_pytorch-2.6.0-py3-none-any.whl
WHEEL_SHA256=ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca
declare -A OUT_SHA256=(
  [pnet]=3ab29b319004f2ce4043e75847e93e3cc80ca804b7c1110f74cb9b7249fbd72a
  [rnet]=fdf8e71b541ef55dd49d303dafa0b0df8d62bedd107b42af8dd89f8d0eadbd96
  [onet]=a1a6f033153950694de3ee0a728bafc0491b6ec35f971e5858e651fe3cf3745e
)

log() { printf 'setup-mtcnn: %s\n' "$*" >&2; }

DIAT_HOME_DIR=${DIAT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
CACHE_DIR=${DIAT_CACHE_DIR:-$DIAT_HOME_DIR/cache}
DEST=${DIAT_MTCNN_DIR:-$CACHE_DIR/mtcnn}
# The venv scripts/setup.sh installs (torch, numpy); DIAT_TORCH_PYTHON or TORCH_VENV override it.
DIAT_CACHE=${DIAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
PYTHON=${DIAT_TORCH_PYTHON:-${TORCH_VENV:-$DIAT_CACHE/torch-2.11.0}/bin/python}

file_sha() { sha256sum "$1" | cut -d' ' -f1; }
outputs_ok() {
  local n
  for n in pnet rnet onet; do
    [ -f "$DEST/$n.safetensors" ] && [ "$(file_sha "$DEST/$n.safetensors")" = "${OUT_SHA256[$n]}" ] || return 1
  done
  [ -f "$DEST/$WHEEL" ] && [ "$(file_sha "$DEST/$WHEEL")" = "$WHEEL_SHA256" ]
}

if outputs_ok; then
  log "MTCNN weights ready: $DEST"
  exit 0
fi

[ -x "$PYTHON" ] || { log "no python with torch at $PYTHON: run scripts/setup.sh first (or set DIAT_TORCH_PYTHON)"; exit 1; }
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -f "$DEST/$WHEEL" ] && [ "$(file_sha "$DEST/$WHEEL")" = "$WHEEL_SHA256" ]; then
  cp "$DEST/$WHEEL" "$work/"
else
  log "downloading $WHEEL from PyPI (pip download --no-deps, 1.9 MB)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$work" "facenet-pytorch==2.6.0"
fi
got=$(file_sha "$work/$WHEEL")
if [ "$got" != "$WHEEL_SHA256" ]; then
  log "$WHEEL: sha256 $got, expected $WHEEL_SHA256 — refusing to use it"
  exit 1
fi

"$PYTHON" - "$work/$WHEEL" "$work/pt" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for n in ("pnet", "rnet", "onet"):
        with open(os.path.join(out, f"{n}.pt"), "wb") as f:
            f.write(z.read(f"facenet_pytorch/data/{n}.pt"))
PY
"$PYTHON" scripts/mtcnn/convert.py --pt-dir "$work/pt" --out "$work/st" >/dev/null

for n in pnet rnet onet; do
  got=$(file_sha "$work/st/$n.safetensors")
  if [ "$got" != "${OUT_SHA256[$n]}" ]; then
    log "$n.safetensors: sha256 $got, expected ${OUT_SHA256[$n]} — conversion differs, not installed"
    exit 1
  fi
done
for n in pnet rnet onet; do mv "$work/st/$n.safetensors" "$DEST/$n.safetensors"; done
cp "$work/$WHEEL" "$DEST/$WHEEL.partial" && mv "$DEST/$WHEEL.partial" "$DEST/$WHEEL"
log "MTCNN weights converted and verified: $DEST/{pnet,rnet,onet}.safetensors"
