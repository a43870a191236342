"""Multi-host for real: two processes on 127.0.0.1 (2 CPU devices each, gloo), checkpoint and resume."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from argmax_music import train
from conftest import REPO
from configs import tiny


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def multihost(workdir, data, steps, log_dir):
  cmd = [str(REPO / "launch" / "local_multihost.sh"), "-n", "2", "-d", "2", "-p", str(free_port()),
         "-l", str(log_dir), "--", "--config=configs/tiny.py", f"--workdir={workdir}", f"--config.data.dir={data}",
         "--config.train.schedule=constant", f"--config.train.steps={steps}"]
  env = dict(os.environ, PYTHON=sys.executable)
  env.pop("XLA_FLAGS", None)
  subprocess.run(cmd, cwd=REPO, env=env, check=True, timeout=240, capture_output=True)
  results = []
  for i in range(2):
    log = (log_dir / f"process_{i}.log").read_text()
    results.append(json.loads(log.strip().splitlines()[-1]))
  return results


def test_two_processes_match_one_process_and_resume(tiny_data, tmp_path):
  first = multihost(tmp_path / "mh", tiny_data, 2, tmp_path / "logs1")
  assert [r["step"] for r in first] == [2, 2]
  second = multihost(tmp_path / "mh", tiny_data, 4, tmp_path / "logs2")
  assert "resumed from" in (tmp_path / "logs2" / "process_0.log").read_text()
  assert second[0]["train"]["loss"] == second[1]["train"]["loss"]

  config = tiny.get_config()
  config.data.dir = str(tiny_data)
  config.train.schedule = "constant"
  single = train.train(config, tmp_path / "single")  # One process, the same 4 devices' worth of batch.
  assert single["train"]["loss"] == pytest.approx(second[0]["train"]["loss"], rel=1e-4)
  assert single["eval"]["nll_bits"] == pytest.approx(second[0]["eval"]["nll_bits"], rel=1e-4)
  a = train.load_trained(tmp_path / "single", use_ema=False)[2]
  b = train.load_trained(tmp_path / "mh", use_ema=False)[2]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_local_multihost_dry_run_prints_one_command_per_process():
  result = subprocess.run([str(REPO / "launch" / "local_multihost.sh"), "-n", "3", "--dry-run", "--",
                           "--config=configs/tiny.py", "--workdir=/tmp/x"], capture_output=True, text=True, check=True)
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 3
  for i, line in enumerate(lines):
    assert f"--process_id={i}" in line and "--num_processes=3" in line and "--workdir=/tmp/x" in line
