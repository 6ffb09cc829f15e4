#!/usr/bin/env bash
# Zoo download and verification speed, each beside its peer on the same file and machine:
#   pull:   `diat zoo pull` (download + streaming sha256 + fsync + atomic rename + model folder)
#           vs `curl -o` alone and `curl -o` followed by `sha256sum` (the same guarantee by hand),
#           from python3 -m http.server on 127.0.0.1;
#   verify: `diat zoo verify` (rehash of the cached blob) vs `sha256sum` of the same blob.
# Each timing is the best of REPS runs (the file stays in the page cache throughout, so this
# measures the client and hashing, not the disk). `diat zoo list` is timed too: the process start
# (which loads libtorch) is part of every diat number.
#
#   scripts/bench/zoo_pull.sh            # 200 MiB, 3 repetitions
#   SIZE_MB=500 REPS=5 scripts/bench/zoo_pull.sh
set -euo pipefail

SIZE_MB=${SIZE_MB:-200}
REPS=${REPS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$(sed -n 's/^target-dir *= *"\(.*\)"/\1/p' "$ROOT/.cargo/config.toml" 2>/dev/null || true)}
DIAT=${DIAT:-${TARGET:-$ROOT/target}/release/diat}
[[ -x $DIAT ]] || { echo "no diat binary at $DIAT (cargo build --release --bin diat, or set DIAT=...)" >&2; exit 1; }
for tool in curl sha256sum python3; do
  command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/diat-zoo-bench.XXXXXX")
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/srv"
head -c $((SIZE_MB << 20)) /dev/urandom >"$WORK/srv/weights.safetensors"
SIZE=$(stat -c %s "$WORK/srv/weights.safetensors")
SHA=$(sha256sum "$WORK/srv/weights.safetensors" | cut -d' ' -f1)

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORK/srv" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT/weights.safetensors"
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "$URL" && break; sleep 0.1; done

cat >"$WORK/registry.toml" <<EOF
schema = 1

[[model]]
name = "bench"
version = "1.0.0"
task = "bench"
variant = "diat"
license = "MIT"
created = "2026-01-01T00:00:00Z"
data_manifest_sha256 = "$SHA"
preprocessing = { crop = { left = 0, top = 20, width = 178, height = 178 }, size = 128, value_range = [-1.0, 1.0] }

[[model.files]]
role = "transform"
url = "$URL"
sha256 = "$SHA"
size = $SIZE
format = "safetensors"
EOF

export DIAT_HOME="$WORK/home" DIAT_PROGRESS=none DIAT_LOG=warn
unset DIAT_ZOO_DIR DIAT_REGISTRY DIAT_OFFLINE

# best of REPS: prints seconds
best() {
  local best=
  for _ in $(seq "$REPS"); do
    [[ -n ${PREP:-} ]] && eval "$PREP"
    local t0 t1
    t0=$(date +%s.%N)
    eval "$1" >/dev/null
    t1=$(date +%s.%N)
    best=$(python3 -c "t=$t1-$t0; b='$best'; print(min(t, float(b)) if b else t)")
  done
  printf '%.3f' "$best"
}
rate() { python3 -c "print(f'{$SIZE / $1 / 2**20:8.1f} MiB/s')"; }

echo "file: $SIZE bytes ($SIZE_MB MiB), best of $REPS; machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
t_start=$(PREP= best "'$DIAT' zoo list --registry '$WORK/registry.toml'")
printf '%-44s %8ss\n' "diat process start (zoo list)" "$t_start"

t_curl=$(PREP="rm -f '$WORK/c.bin'" best "curl -sS -o '$WORK/c.bin' '$URL'")
t_curl_sha=$(PREP="rm -f '$WORK/c.bin'" best "curl -sS -o '$WORK/c.bin' '$URL' && sha256sum '$WORK/c.bin'")
t_pull=$(PREP="rm -rf '$WORK/home'" best "'$DIAT' zoo pull bench --registry '$WORK/registry.toml' -q")
printf '%-44s %8ss %s\n' "curl -o" "$t_curl" "$(rate "$t_curl")"
printf '%-44s %8ss %s\n' "curl -o && sha256sum" "$t_curl_sha" "$(rate "$t_curl_sha")"
printf '%-44s %8ss %s\n' "diat zoo pull (verified, fsync, installed)" "$t_pull" "$(rate "$t_pull")"

BLOB="$WORK/home/zoo/v1/blobs/sha256/$SHA"
[[ -f $BLOB ]] || { echo "pull left no blob at $BLOB" >&2; exit 1; }
t_sum=$(PREP= best "sha256sum '$BLOB'")
t_verify=$(PREP= best "'$DIAT' zoo verify")
printf '%-44s %8ss %s\n' "sha256sum" "$t_sum" "$(rate "$t_sum")"
printf '%-44s %8ss %s\n' "diat zoo verify" "$t_verify" "$(rate "$t_verify")"

# diat's own in-process timings (no process start): the transfer+hash of pull, the rehash of verify.
rm -rf "$WORK/home"
"$DIAT" zoo pull bench --registry "$WORK/registry.toml" -q --json >"$WORK/pull.json"
"$DIAT" zoo verify --json >"$WORK/verify.json" || true
python3 - "$WORK/pull.json" "$WORK/verify.json" "$SIZE" <<'PY'
import json, sys
pull, verify, size = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
f = pull[0]["fetched"][0]
print(f"{'in-process: pull transfer + sha256 + fsync':<44} {f['seconds']:8.3f}s {size / f['seconds'] / 2**20:8.1f} MiB/s")
print(f"{'in-process: verify rehash':<44} {verify['seconds']:8.3f}s {verify['bytes_hashed'] / verify['seconds'] / 2**20:8.1f} MiB/s")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
