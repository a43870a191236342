#!/usr/bin/env bash
# Train on GPUs: one multi-GPU node (one process sees every GPU), or a SLURM cluster (one process per
# GPU; jax.distributed.initialize reads the cluster from SLURM's environment).
#
#   launch/gpu.sh [--dry-run] node  [-- TRAIN_ARGS...]   on this machine
#   launch/gpu.sh [--dry-run] slurm [-- TRAIN_ARGS...]   srun over NODES x GPUS_PER_NODE tasks
#
# Required: WORKDIR (shared by every node for slurm). Optional: CONFIG (configs/tpu_hop20.py),
#   PYTHON (.venv/bin/python); for slurm: NODES (required), GPUS_PER_NODE (8), PARTITION, TIME (24:00:00).
# Install first: pip install -r requirements.txt 'jax[cuda12]==0.10.2' && pip install -e .
# --dry-run prints the command instead of running it.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=0
mode=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    node|slurm) mode="$1"; shift ;;
    --) shift; break ;;
    *) echo "unknown mode or option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$mode" ]] || { usage >&2; exit 2; }
[[ -n "${WORKDIR:-}" ]] || { echo "error: set WORKDIR (see --help)" >&2; exit 2; }
if [[ $mode == slurm && -z "${NODES:-}" ]]; then
  echo "error: set NODES for slurm (see --help)" >&2
  exit 2
fi

CONFIG="${CONFIG:-configs/tpu_hop20.py}"
PYTHON="${PYTHON:-.venv/bin/python}"
train=("$PYTHON" -m argmax_music.train --config="$CONFIG" --workdir="$WORKDIR" "$@")

if [[ $mode == node ]]; then
  cmd=("${train[@]}")
else
  gpus="${GPUS_PER_NODE:-8}"
  cmd=(srun --nodes="$NODES" --ntasks-per-node="$gpus" --gpus-per-task=1 --time="${TIME:-24:00:00}")
  [[ -n "${PARTITION:-}" ]] && cmd+=(--partition="$PARTITION")
  cmd+=("${train[@]}" --distributed)
fi

if [[ $dry_run == 1 ]]; then
  printf '%q ' "${cmd[@]}"; echo
else
  exec "${cmd[@]}"
fi
