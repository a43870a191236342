#!/usr/bin/env bash
# Train with several JAX processes on this machine (CPU, gloo collectives): the multi-host code path of a
# TPU pod slice or a GPU cluster, on one computer.
#
#   launch/local_multihost.sh [-n PROCESSES] [-d DEVICES_PER_PROCESS] [-p PORT] [-l LOG_DIR] [--dry-run] -- TRAIN_ARGS...
#   launch/local_multihost.sh -n 2 -d 2 -- --config=configs/tiny.py --workdir=/tmp/mh --config.data.dir=...
#
# Each process gets --coordinator_address/--num_processes/--process_id and reads its own shard of the
# data; process i logs to LOG_DIR/process_i.log (-l LOG_DIR; default: a new temp folder, printed).
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

processes=2 devices=2 port=12355 dry_run=0 python="${PYTHON:-python}" log_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n) processes="$2"; shift 2 ;;
    -d) devices="$2"; shift 2 ;;
    -p) port="$2"; shift 2 ;;
    -l) log_dir="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "missing training arguments after -- (see --help)" >&2; exit 2; }
log_dir="${log_dir:-$(mktemp -d)}"
mkdir -p "$log_dir"

pids=()
for ((i = 0; i < processes; i++)); do
  cmd=(env JAX_PLATFORMS=cpu "XLA_FLAGS=${XLA_FLAGS:-} --xla_force_host_platform_device_count=$devices"
       "$python" -m argmax_music.train --coordinator_address="127.0.0.1:$port" --num_processes="$processes"
       --process_id="$i" "$@")
  if [[ $dry_run == 1 ]]; then
    printf '%q ' "${cmd[@]}"; echo
    continue
  fi
  "${cmd[@]}" >"$log_dir/process_$i.log" 2>&1 &
  pids+=("$!")
done
[[ $dry_run == 1 ]] && exit 0
echo "started ${#pids[@]} processes; logs in $log_dir"

status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "process $i failed; the end of its log:" >&2
    tail -n 30 "$log_dir/process_$i.log" >&2
    status=1
  fi
done
exit "$status"
