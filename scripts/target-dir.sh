#!/usr/bin/env bash
# Prints cargo's target dir for this checkout: $CARGO_TARGET_DIR when set, else
# $DIAT_CACHE/targets/<folder>-<12 hex of the checkout's physical path>.
#
# One target dir per checkout, not one shared by every clone: cargo decides whether a workspace
# crate is fresh by file times, and two checkouts with the same layout build the same units (path
# packages are hashed relative to the workspace). Sharing one folder, a build in checkout A after
# a build in checkout B could keep B's artifacts for A's older-dated files — a binary with the
# other checkout's code or embedded zoo registry, silently (seen: `diat zoo list` in one clone
# missing a model its registry had, because a second clone had built diat-zoo later).
set -euo pipefail
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  printf '%s\n' "$CARGO_TARGET_DIR"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd -P)
cache=${DIAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/diat}
id=$(printf '%s' "$root" | sha256sum | cut -c1-12)
printf '%s\n' "$cache/targets/$(basename "$root")-$id"
