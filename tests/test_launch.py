"""Launch scripts: real runs against stub gcloud/srun on PATH, dry runs, missing variables, shellcheck."""

import os
import shutil
import subprocess

import pytest
from conftest import REPO

LAUNCH = REPO / "launch"
TPU_ENV = {"PROJECT": "proj", "ZONE": "us-central2-b", "BUCKET": "my-bucket", "REPO_URL": "https://x/repo.git"}


@pytest.fixture
def stubs(tmp_path):
  """gcloud and srun that record their arguments, one call a line, in calls.txt."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name in ("gcloud", "srun"):
    stub = bin_dir / name
    stub.write_text(
      f'#!/usr/bin/env bash\nprintf "{name}" >> "{tmp_path}/calls.txt"\n'
      f'printf " %q" "$@" >> "{tmp_path}/calls.txt"\necho >> "{tmp_path}/calls.txt"\n'
    )
    stub.chmod(0o755)
  env = {k: v for k, v in os.environ.items() if k not in TPU_ENV and k not in ("WORKDIR", "NODES")}
  env["PATH"] = f"{bin_dir}:{env['PATH']}"
  return env, tmp_path / "calls.txt"


def run(script, args, env, **extra):
  return subprocess.run([str(LAUNCH / script), *args], env={**env, **extra}, capture_output=True, text=True)


def test_tpu_script_issues_create_setup_train_logs_delete(stubs):
  env, calls = stubs
  result = run("tpu.sh", ["all", "delete", "--", "--config.train.steps=100"], env, **TPU_ENV, SPOT="1")
  assert result.returncode == 0, result.stderr
  lines = calls.read_text().splitlines()
  assert len(lines) == 5
  create, setup, train, logs, delete = lines
  assert create.startswith("gcloud compute tpus tpu-vm create argmax-music --project=proj --zone=us-central2-b")
  assert "--accelerator-type=v4-32" in create and "--spot" in create
  assert "--worker=all" in setup and "gcsfuse" in setup and "https://x/repo.git" in setup and "jax\\[tpu\\]" in setup
  assert "--worker=all" in train and "--distributed" in train and "configs/tpu_hop20.py" in train
  assert "--config.train.steps=100" in train
  assert "--worker=0" in logs and "train.log" in logs
  assert delete.startswith("gcloud compute tpus tpu-vm delete argmax-music") and "--quiet" in delete


def test_tpu_script_dry_run_and_missing_variables(stubs):
  env, calls = stubs
  result = run("tpu.sh", ["--dry-run", "create"], env, **TPU_ENV)
  assert result.returncode == 0 and result.stdout.startswith("gcloud compute tpus tpu-vm create")
  assert not calls.exists()  # a dry run calls nothing
  result = run("tpu.sh", ["create"], env, PROJECT="p")
  assert result.returncode == 2 and "ZONE BUCKET REPO_URL" in result.stderr
  assert not calls.exists()
  assert "Required environment" in run("tpu.sh", ["--help"], env).stdout


def test_gpu_script_node_and_slurm(stubs):
  env, calls = stubs
  result = run(
    "gpu.sh",
    ["slurm", "--", "--config.train.steps=5"],
    env,
    WORKDIR="/shared/run",
    NODES="2",
    GPUS_PER_NODE="4",
    PARTITION="gpu",
  )
  assert result.returncode == 0, result.stderr
  (line,) = calls.read_text().splitlines()
  assert line.startswith("srun --nodes=2 --ntasks-per-node=4 --gpus-per-task=1")
  assert "--partition=gpu" in line and "--distributed" in line and "--workdir=/shared/run" in line
  dry = run("gpu.sh", ["--dry-run", "node"], env, WORKDIR="/w")
  assert dry.returncode == 0 and "-m argmax_music.train --config=configs/tpu_hop20.py --workdir=/w" in dry.stdout
  assert "--distributed" not in dry.stdout
  assert "set NODES" in run("gpu.sh", ["slurm"], env, WORKDIR="/w").stderr
  assert "set WORKDIR" in run("gpu.sh", ["node"], env).stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_launch_scripts_are_shellcheck_clean():
  scripts = sorted(str(p) for p in LAUNCH.glob("*.sh"))
  result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout
