#!/usr/bin/env bash
# `make build`: the release build of the diat binary, set-up included. On a fresh machine the torch
# venv's install (network and disk, 1.5-2.5 minutes) runs while cargo compiles everything that needs
# no libtorch - polars and the data crates, i.e. the curator's build - then the default build adds
# torch-sys, tch and the training crates (docs/setup.md has the figures). When the venv is ready
# this is `make setup` then one cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
if bash scripts/setup.sh --check; then
  bash scripts/setup.sh
else
  bash scripts/setup.sh &
  setup_pid=$!
  curator=0
  $CARGO build --release --locked --bin diat --no-default-features || curator=$?
  wait "$setup_pid"
  # A failed curator build is reported by the full build below, with the venv in place.
  [ "$curator" = 0 ] || echo "build: the build without libtorch failed (rc $curator); building everything" >&2
fi
$CARGO build --release --locked --bin diat
