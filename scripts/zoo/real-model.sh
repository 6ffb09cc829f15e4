#!/usr/bin/env bash
# One zoo model on real CelebA faces (issue 14), from the shared real crops to a published,
# carded entry in zoo/, each step skipped when its output exists (re-run it to resume):
#
#   make zoo-real TASK=mouth_open VERSION=0.1.0   # builds diat, then runs this script
#
#   1. diat align        the real test-split crops onto the CelebA template (once for all tasks)
#   2. diat data from-aligned   CelebA's official layout, divided anew by identity (seed 2017)
#   3. diat data prepare        the paper's curated sets at 64 px
#   4. diat train        pipelines/real-cpu/TASK.toml, resumable (Ctrl-C checkpoints)
#   5. diat eval real    held-out identities (the test part of the identity split) -> eval-real.json
#      diat eval lfw     LFW's whole photos (LFW, default ../shared/lfw, when present) -> eval-lfw.json
#   6. diat zoo publish  weights + card into zoo/models/TASK/VERSION, entry into zoo/registry.toml
#                        (PUBLISH=0 stops after the evaluation)
#
# Environment: DIAT (the binary; default: release build of this checkout), WORK (default
# work/real-zoo, ignored by git), CELEBA (../shared/celeba: real annotation files), FACES
# (../shared/celeba-real/faces), SET (extra `--set` for diat train, e.g. 'stages.adversarial.lambda=300').
# DESC (the entry's one-line description).
set -euo pipefail
cd "$(dirname "$0")/../.."
task=${1:?usage: $0 TASK VERSION}
version=${2:?usage: $0 TASK VERSION}
case $task in
  mouth_open)        attr=Mouth_Slightly_Open dir=add ;;
  mouth_close)       attr=Mouth_Slightly_Open dir=remove ;;
  eyeglasses_remove) attr=Eyeglasses dir=remove ;;
  male_to_female)    attr=Male dir=remove ;;
  older_to_younger)  attr=Young dir=add ;;
  *) echo "unknown task $task (mouth_open, mouth_close, eyeglasses_remove, male_to_female, older_to_younger)" >&2; exit 2 ;;
esac
DIAT=${DIAT:-$(bash scripts/target-dir.sh)/release/diat}
[ -x "$DIAT" ] || { echo "no diat binary at $DIAT: run \`make build\` (or \`make zoo-real TASK=... VERSION=...\`)" >&2; exit 1; }
WORK=${WORK:-work/real-zoo}
CELEBA=${CELEBA:-../shared/celeba}
FACES=${FACES:-../shared/celeba-real/faces}
mkdir -p "$WORK/runs"
aligned=$WORK/aligned root=$WORK/celeba-real data=$WORK/prepared run=$WORK/runs/$task
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

[ -f "$aligned/faces.json" ] || { log "align $FACES"; "$DIAT" align "$FACES" --out "$aligned" --largest --aligned; }
[ -d "$root/Img" ] || { log "from-aligned"; "$DIAT" data from-aligned "$aligned/faces.json" --celeba "$CELEBA" --out "$root"; }
[ -f "$data/index.json" ] || { log "prepare"; "$DIAT" data prepare "$root" --out "$data" --size 64; }
set_args=(--set "task.data=\"$(realpath "$data")\"")
[ -n "${SET:-}" ] && set_args+=(--set "$SET")
log "train $task"
start=$(date +%s)
"$DIAT" train --pipeline "pipelines/real-cpu/$task.toml" --run-dir "$run" --resume "${set_args[@]}"
log "trained in $(( $(date +%s) - start )) s (this call)"
log "eval real ($attr, $dir)"
"$DIAT" eval real --model "$run/final" --attr "$attr" --direction "$dir" --faces "$aligned" \
  --celeba "$CELEBA" --split test --json "$run/eval-real.json" --sheet "$run/eval-real.png"
# LFW's whole photos (issue 20), when LFW names its folder (../shared/lfw when present).
LFW=${LFW-../shared/lfw}
lfw_args=()
if [ -n "$LFW" ] && [ -f "$LFW/pairsDevTest.txt" ]; then
  log "eval lfw"
  "$DIAT" eval lfw --model "$run/final" --lfw "$LFW" --json "$run/eval-lfw.json" --sheet "$run/eval-lfw.png"
  lfw_args=(--eval-lfw "$run/eval-lfw.json")
fi
[ "${PUBLISH:-1}" = 1 ] || exit 0
# The card's notes: the task's own, then the limits and the data every real-cpu model shares.
notes=$run/card-notes.md
cat "pipelines/real-cpu/notes/$task.md" <(echo) pipelines/real-cpu/notes/_limits.md <(echo) \
  pipelines/real-cpu/notes/_data.md > "$notes"
log "publish $task@$version"
"$DIAT" zoo publish "$run" --name "$task" --version "$version" --base-url models --out zoo/models \
  --license LicenseRef-CelebA-non-commercial-research --data-manifest "$data/tasks/$task/input/manifest.json" \
  --eval "$run/eval-real.json" "${lfw_args[@]}" --notes "$notes" --no-samples \
  --description "${DESC:-$task on real CelebA faces, DIAT-A, 64 px, trained on a 2-core CPU}" \
  --registry zoo/registry.toml
# The stanza is in zoo/registry.toml now; its copy beside the weights would only drift.
rm -f "zoo/models/$task/$version/registry-stanza.toml"
