#!/usr/bin/env bash
# Train on a Cloud TPU VM or pod slice: create it, install the repo on every worker, train on all
# workers with the same command, stream the logs, delete it.
#
#   launch/tpu.sh [--dry-run] STEP [STEP...] [-- TRAIN_ARGS...]
#   STEP: create | setup | train | logs | delete | all (= create setup train logs)
#
# Required environment: PROJECT, ZONE, REPO_URL (git URL of your copy of this repository), BUCKET (a GCS
# bucket, mounted with gcsfuse at /mnt/bucket on every worker: prepared data and workdirs live there).
# Optional: TPU_NAME (argmax-music), ACCELERATOR_TYPE (v4-32), RUNTIME_VERSION (tpu-ubuntu2204-base),
#   CONFIG (configs/tpu_hop20.py), WORKDIR (/mnt/bucket/runs/hop20),
#   SPOT=1 for a spot (preemptible) slice: training saves on SIGTERM and resumes on the next `train`.
# --dry-run prints the gcloud commands instead of running them.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=0
steps=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    create|setup|train|logs|delete) steps+=("$1"); shift ;;
    all) steps+=(create setup train logs); shift ;;
    *) echo "unknown step or option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
train_args=("$@")
[[ ${#steps[@]} -gt 0 ]] || { usage >&2; exit 2; }

missing=()
for var in PROJECT ZONE BUCKET REPO_URL; do
  [[ -n "${!var:-}" ]] || missing+=("$var")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "error: set ${missing[*]} (see --help)" >&2
  exit 2
fi

TPU_NAME="${TPU_NAME:-argmax-music}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-32}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
CONFIG="${CONFIG:-configs/tpu_hop20.py}"
WORKDIR="${WORKDIR:-/mnt/bucket/runs/hop20}"
where=(--project="$PROJECT" --zone="$ZONE")

run() {
  if [[ $dry_run == 1 ]]; then
    printf '%q ' "$@"; echo
  else
    "$@"
  fi
}

on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${where[@]}" --worker=all --command="$1"
}

for step in "${steps[@]}"; do
  case "$step" in
    create)
      spot=()
      [[ "${SPOT:-0}" == 1 ]] && spot=(--spot)
      run gcloud compute tpus tpu-vm create "$TPU_NAME" "${where[@]}" --accelerator-type="$ACCELERATOR_TYPE" \
        --version="$RUNTIME_VERSION" "${spot[@]}" ;;
    setup)
      on_all_workers "set -e; sudo apt-get update -qq; sudo apt-get install -y -qq libsndfile1 git python3-venv; \
sudo mkdir -p /mnt/bucket; sudo chown \$USER /mnt/bucket; \
mountpoint -q /mnt/bucket || gcsfuse --implicit-dirs $BUCKET /mnt/bucket; \
[ -d argmax_music ] || git clone $REPO_URL argmax_music; cd argmax_music && git pull --ff-only; \
python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt 'jax[tpu]==0.10.2' && .venv/bin/pip install -q --no-deps -e ." ;;
    train)
      args="--distributed --config=$CONFIG --workdir=$WORKDIR"
      for a in "${train_args[@]}"; do args+=" $(printf '%q' "$a")"; done
      on_all_workers "cd argmax_music && nohup .venv/bin/python -m argmax_music.train $args > train.log 2>&1 &" ;;
    logs)
      run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${where[@]}" --worker=0 --command="tail -n 100 -f argmax_music/train.log" ;;
    delete)
      run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${where[@]}" --quiet ;;
  esac
done
