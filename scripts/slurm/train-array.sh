#!/usr/bin/env bash
# Trains every paper pipeline on a Slurm cluster, one pipeline per array index:
#   sbatch scripts/slurm/train-array.sh
# Five minutes before the time limit Slurm sends SIGTERM; diat finishes the step, writes a
# checkpoint and exits 130, and the task is requeued to resume (finished stages are skipped).
# Build the binary first (`make gpu-bundle` on a build machine) and point DIAT_LIBTORCH at the
# cluster's torch 2.11.0 if it is not found automatically (see scripts/diat-gpu).
#SBATCH --job-name=diat-train
#SBATCH --array=0-4
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=12:00:00
#SBATCH --signal=B:TERM@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=logs/diat-%A_%a.out
set -uo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/../..}"
PIPELINES=(mouth_open mouth_close eyeglasses_remove male_to_female older_to_younger)
p=${PIPELINES[${SLURM_ARRAY_TASK_ID:-0}]}
DIAT=${DIAT:-.device/bin/diat-gpu}
mkdir -p logs
"$DIAT" train --pipeline "pipelines/$p.toml" --resume &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"; code=$?
# `wait` returns early when the trap fires: wait again for diat's own exit status.
if kill -0 "$pid" 2>/dev/null; then wait "$pid"; code=$?; fi
if [ "$code" -eq 130 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "diat-train: $p checkpointed at the time limit, requeueing"
  scontrol requeue "${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}"
  exit 0
fi
exit "$code"
