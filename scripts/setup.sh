#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (or a quick no-op when done):
#   1. a Python venv with PyTorch 2.11.0 (the libtorch that tch 0.24 links against) plus the few
#      Python packages our parity and benchmark scripts use; ~4.6 GB, under a minute the first time
#      (installed with uv);
#   2. .cargo/config.toml (git-ignored) pointing cargo at that libtorch and at this checkout's
#      target dir (scripts/target-dir.sh), so plain `cargo build` / `cargo test` work too.
# Both live outside the checkout (DIAT_CACHE, default ~/.cache/diat): every clone reuses the venv;
# each checkout path keeps its own build (sharing one made stale binaries: scripts/target-dir.sh). Override TORCH_VENV to use another venv that already has torch 2.11.0.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
PY_PACKAGES=("torch==${TORCH_VERSION}" "numpy==2.4.6" "safetensors==0.8.0" "pillow==13.0.0")
UV_PIN="uv==0.13.9"
DIAT_CACHE=${DIAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
TORCH_VENV=${TORCH_VENV:-$DIAT_CACHE/torch-$TORCH_VERSION}
TARGET_DIR=$(DIAT_CACHE=$DIAT_CACHE bash scripts/target-dir.sh)

log() { printf 'setup: %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust stable (rustup) first"; exit 1; }
command -v python3 >/dev/null || { log "python3 not found: apt-get install python3 python3-venv"; exit 1; }

venv_ok() {
  [ -f "$1/.diat-ok" ] && [ "$(cat "$1/.diat-ok")" = "${PY_PACKAGES[*]}" ] &&
    "$1/bin/python" -c "import torch,sys; sys.exit(0 if torch.__version__.split('+')[0]=='$TORCH_VERSION' else 1)" 2>/dev/null
}

if venv_ok "$TORCH_VENV"; then
  log "torch $TORCH_VERSION venv ready: $TORCH_VENV"
else
  # The stamp file is written last: an interrupted install never looks complete and is redone.
  log "installing torch $TORCH_VERSION with its CUDA runtime wheels into $TORCH_VENV (~4.6 GB, about a minute)"
  mkdir -p "$(dirname "$TORCH_VENV")"
  df -h "$(dirname "$TORCH_VENV")" | tail -1 | awk '{print "setup: free disk there: "$4}' >&2
  rm -rf "$TORCH_VENV"
  python3 -m venv "$TORCH_VENV"
  # uv (from PyPI, pinned) downloads and unpacks the wheels in parallel: 23 s for the 4.6 GB where
  # pip took 92 s on the same 2-vCPU machine (docs/setup.md). Its cache lives inside the venv
  # (hard links, no second copy) and goes once the install is done. pip if uv cannot be had.
  if "$TORCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$UV_PIN" &&
    UV_CACHE_DIR="$TORCH_VENV/.uv-cache" "$TORCH_VENV/bin/uv" pip install --quiet \
      --python "$TORCH_VENV/bin/python" "${PY_PACKAGES[@]}"; then
    :
  else
    log "uv failed; installing with pip instead"
    "$TORCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  fi
  # Also after a failed uv run: its partial cache would otherwise stay inside the venv.
  rm -rf "$TORCH_VENV/.uv-cache"
  printf '%s' "${PY_PACKAGES[*]}" > "$TORCH_VENV/.diat-ok"
  venv_ok "$TORCH_VENV" || { log "torch import failed in $TORCH_VENV"; exit 1; }
fi

LIBTORCH=$("$TORCH_VENV/bin/python" -c 'import torch, pathlib; print(pathlib.Path(torch.__file__).parent)')
mkdir -p .cargo
cfg=$(cat <<CFG
# Written by scripts/setup.sh; git-ignored. Regenerate with \`make setup\`.
[build]
target-dir = "$TARGET_DIR"

[env]
LIBTORCH = "$LIBTORCH"
LIBTORCH_CXX11_ABI = "1"
DIAT_TORCH_PYTHON = "$TORCH_VENV/bin/python"
CFG
)
if [ "$(cat .cargo/config.toml 2>/dev/null)" != "$cfg" ]; then
  printf '%s\n' "$cfg" > .cargo/config.toml.tmp && mv .cargo/config.toml.tmp .cargo/config.toml
  log "wrote .cargo/config.toml (LIBTORCH=$LIBTORCH, target-dir=$TARGET_DIR)"
fi
# MTCNN face-detector weights for `diat align` (pip download of facenet-pytorch, sha256-pinned).
TORCH_VENV="$TORCH_VENV" bash scripts/setup-mtcnn.sh
# dlib's face-recognition ResNet (converted to safetensors) and dlib-bin for its parity tests.
TORCH_VENV="$TORCH_VENV" bash scripts/setup-dlib.sh
