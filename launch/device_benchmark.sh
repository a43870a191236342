#!/usr/bin/env bash
# benchmarks/accelerator.py on a bare GPU machine with no internet, from the repository root, in two steps:
#
#   launch/device_benchmark.sh wheels               here (with pip's registry): the wheels into .wheels/
#   launch/device_benchmark.sh run [-- ARGS...]     there: install them, run the benchmark, its results into OUT
#
# What the device machine has (the workplace's notes, /work/.library/device/KINDS.md, 2026-11): python3 is Python
# 3.12.3 (/opt/torch/.venv) with jax, jaxlib, jax-cuda13-plugin and jax-cuda13-pjrt 0.11.2 and the nvidia CUDA 13
# wheels they load, flax, optax, absl-py, numpy 2.5.2, orbax-checkpoint, PyYAML; driver 580 (CUDA 13.0); no
# ml-collections. Nothing can be downloaded there, and one call carries at most 64 MiB. This project pins jax 0.10.2,
# whose GPU wheels do not fit (sizes pip resolved here on 2026-12-02, cp312 manylinux x86_64): jaxlib 81.5 MiB alone,
# jax-cuda13-pjrt 118.6 MiB, jax-cuda13-plugin 7.1 MiB; `jax[cuda12]==0.10.2` with its nvidia-*-cu12 wheels 3.1 GiB
# (cuDNN 683 MiB, cuBLAS 554 MiB, cuSPARSE 350 MiB, NCCL 335 MiB, cuSOLVER 323 MiB, ...). So `run` keeps the
# machine's JAX and CUDA plugin and installs from .wheels/ only the project's pinned pure-Python packages that the
# benchmark imports (PACKAGES, at requirements.txt's versions: 1.1 MiB), with --no-deps into a folder ahead of the
# machine's own on PYTHONPATH; the package runs from the checkout (PYTHONPATH: nothing is built or installed into
# the machine's environment). The JSON records the versions it ran with.
#
# Environment: PACKAGES ("flax optax ml-collections absl-py"; e.g. "ml-collections" to use the machine's flax and
#   optax), PYTHON (python3), OUT (results/device: the JSON, log and trace), DEADLINE_S (480: the benchmark's whole
#   run; it is killed 30 s later), SKIP_INSTALL=1 (use PYTHON's packages as they are: the CPU rehearsal),
#   XLA_PYTHON_CLIENT_MEM_FRACTION (0.95: the share of the GPU's memory XLA may use).
# In this workplace: run(command="bash launch/device_benchmark.sh run", carry=[".wheels"], timeout_s=600).
# Rehearsal on a CPU: SKIP_INSTALL=1 PYTHON=.venv/bin/python OUT=/tmp/out launch/device_benchmark.sh run -- --smoke
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

PACKAGES="${PACKAGES:-flax optax ml-collections absl-py}"
PYTHON="${PYTHON:-python3}"
WHEELS=.wheels

pins() {  # requirements.txt's line of each name in PACKAGES.
  local name
  for name in $PACKAGES; do
    grep -iE "^${name}==" requirements.txt || { echo "error: $name is not pinned in requirements.txt" >&2; exit 2; }
  done
}

download() {
  mkdir -p "$WHEELS"
  local requirements
  requirements=$(pins)
  # shellcheck disable=SC2086  # One argument per pin.
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" $requirements
  du -sh "$WHEELS"
}

run() {
  local out="${OUT:-results/device}" deadline="${DEADLINE_S:-480}" status=0
  mkdir -p "$out"
  export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}" PYTHONUNBUFFERED=1
  if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    local site=/tmp/argmax_music_site requirements
    requirements=$(pins)
    # shellcheck disable=SC2086  # One argument per pin.
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      --find-links "$WHEELS" $requirements
    export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L; fi
  "$PYTHON" -c 'import jax, flax, optax, ml_collections; print("jax", jax.__version__, jax.devices())'
  local profile=/tmp/argmax_music_profile trace
  rm -rf "$profile"
  # The JSON is rewritten after each configuration: a run killed at the deadline keeps what it measured.
  timeout --kill-after=10 $((deadline + 30)) "$PYTHON" benchmarks/accelerator.py --out="$out/" --profile \
    --profile_dir="$profile" --deadline_s="$deadline" "$@" 2>&1 | tee "$out/benchmark.log" || status=$?
  if [[ $status -ne 0 ]]; then echo "the benchmark exited with status $status" >&2; fi
  for trace in "$profile"/plugins/profile/*/perfetto_trace.json.gz; do
    # Files of 16 MiB at most come back from the device machine.
    if [[ -f "$trace" && $(stat -c %s "$trace") -le 16000000 ]]; then cp "$trace" "$out/"; fi
  done
  ls -la "$out"
  return "$status"
}

mode="${1:-}"
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == -- ]] && shift
case "$mode" in
  wheels) download ;;
  run) run "$@" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
