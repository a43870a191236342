"""Multi-host for real: two processes on 127.0.0.1 (2 CPU devices each, gloo), checkpoint and resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import FAST_COMPILE, REPO, xla_flags

from argmax_music import checkpoints, train
from configs import tiny


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def multihost(workdir, data, steps, log_dir):
  """Two processes of 2 CPU devices each started by launch/local_multihost.sh; their last JSON lines."""
  cmd = [
    str(REPO / "launch" / "local_multihost.sh"),
    "-n",
    "2",
    "-d",
    "2",
    "-p",
    str(free_port()),
    "-l",
    str(log_dir),
    "--",
    *train_flags(workdir, data, steps),
  ]
  env = dict(os.environ, PYTHON=sys.executable)
  env["XLA_FLAGS"] = FAST_COMPILE  # The script adds its device count.
  subprocess.run(cmd, cwd=REPO, env=env, check=True, timeout=240, capture_output=True)
  return [json.loads((log_dir / f"process_{i}.log").read_text().strip().splitlines()[-1]) for i in range(2)]


def test_local_multihost_dry_run_prints_one_command_per_process():
  result = subprocess.run(
    [
      str(REPO / "launch" / "local_multihost.sh"),
      "-n",
      "3",
      "--dry-run",
      "--",
      "--config=configs/tiny.py",
      "--workdir=/tmp/x",
    ],
    capture_output=True,
    text=True,
    check=True,
  )
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 3
  for i, line in enumerate(lines):
    assert f"--process_id={i}" in line and "--num_processes=3" in line and "--workdir=/tmp/x" in line


def train_flags(workdir, data, steps) -> list[str]:
  return [
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    f"--config.data.dir={data}",
    "--config.train.schedule=constant",
    f"--config.train.steps={steps}",
    "--config.train.log_every=1",
    "--config.train.eval_every=100000",
    "--config.train.checkpoint_every=100000",
  ]


# The trainer, with the multi-host collectives that its loop runs outside checkpointing recorded (the main thread,
# not inside a `checkpoints.Checkpoints` call; Orbax's background threads finish saves): to $COLLECTIVES_OUT at exit.
COUNTING_TRAINER = """
import atexit, json, os, runpy, threading
from jax.experimental import multihost_utils
from argmax_music import checkpoints
calls, inside = [], [0]
def outside_checkpoints(name, real):
  def call(*args, **kwargs):
    if threading.current_thread() is threading.main_thread() and not inside[0]:
      calls.append(name)
    return real(*args, **kwargs)
  return call
def checkpointing(real):
  def call(*args, **kwargs):
    inside[0] += 1
    try:
      return real(*args, **kwargs)
    finally:
      inside[0] -= 1
  return call
for name in ("process_allgather", "sync_global_devices", "broadcast_one_to_all"):
  setattr(multihost_utils, name, outside_checkpoints(name, getattr(multihost_utils, name)))
for name in ("__init__", "save", "restore_latest", "wait", "close"):
  setattr(checkpoints.Checkpoints, name, checkpointing(getattr(checkpoints.Checkpoints, name)))
atexit.register(lambda: open(os.environ["COLLECTIVES_OUT"], "w").write(json.dumps(calls)))
runpy.run_module("argmax_music.train", run_name="__main__")
"""


def start_process(i, port, workdir, data, steps, log_dir):
  cmd = [
    sys.executable,
    "-c",
    COUNTING_TRAINER,
    f"--coordinator_address=127.0.0.1:{port}",
    "--num_processes=2",
    f"--process_id={i}",
    *train_flags(workdir, data, steps),
  ]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(2))
  env["COLLECTIVES_OUT"] = str(log_dir / f"collectives_{i}.json")
  log = open(log_dir / f"process_{i}.log", "w")
  return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_both(workdir, data, steps, log_dir, until=None, timeout=600):
  """Two processes; with `until`, once both logs contain it, SIGTERM to process 1 only. Their last JSON lines."""
  log_dir.mkdir(parents=True, exist_ok=True)
  port = free_port()
  procs = [start_process(i, port, workdir, data, steps, log_dir) for i in range(2)]
  logs = [log_dir / f"process_{i}.log" for i in range(2)]
  try:
    if until:
      deadline = time.monotonic() + timeout
      while not all(until in p.read_text() for p in logs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), logs[0].read_text()[-2000:]
        time.sleep(0.2)
      procs[1].send_signal(signal.SIGTERM)
      stopped = time.monotonic()
      for p in procs:
        p.wait(timeout=60)
      assert time.monotonic() - stopped < 60
    else:
      for p in procs:
        p.wait(timeout=timeout)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log.read_text()[-3000:]
  return [json.loads(log.read_text().strip().splitlines()[-1]) for log in logs]


@pytest.mark.slow
def test_preemption_without_per_step_collective(tiny_data, tmp_path):
  """Two processes agree on preemption through JAX's coordination service: over 20+ steps the loop runs no
  multi-host collective outside checkpointing (the per-step allgather ran one a step), and SIGTERM to one process
  still stops both at the same step."""
  stopped = run_both(tmp_path / "mh", tiny_data, 100000, tmp_path / "logs", until="step 20/")
  assert stopped[0]["step"] == stopped[1]["step"] >= 20
  for i in range(2):
    calls = json.loads((tmp_path / "logs" / f"collectives_{i}.json").read_text())
    assert calls == []


@pytest.mark.slow
def test_sigterm_one_process(tiny_data, tmp_path):
  """SIGTERM to one of two processes: both save the same step and stop; restarted, both resume from it
  bitwise (against an uninterrupted two-process run started by launch/local_multihost.sh), and two
  processes match one process with the same four devices' worth of batch."""
  stopped = run_both(tmp_path / "mh", tiny_data, 100000, tmp_path / "logs1", until="step 3/")
  step = stopped[0]["step"]
  assert stopped[1]["step"] == step and 3 <= step < 100000  # Both saved the same step and left the loop.
  assert "stopped by signal" in (tmp_path / "logs1" / "process_0.log").read_text()
  assert checkpoints.load_params(tmp_path / "mh").step == step
  resumed = run_both(tmp_path / "mh", tiny_data, step + 2, tmp_path / "logs2")
  for i in range(2):
    assert f"at step {step} " in (tmp_path / "logs2" / f"process_{i}.log").read_text()
  straight = multihost(tmp_path / "straight", tiny_data, step + 2, tmp_path / "logs3")
  assert [r["step"] for r in resumed] == [r["step"] for r in straight] == [step + 2] * 2
  assert resumed[0]["train"]["loss"] == resumed[1]["train"]["loss"] == straight[0]["train"]["loss"]
  a = checkpoints.load_params(tmp_path / "mh", use_ema=False).params
  b = checkpoints.load_params(tmp_path / "straight", use_ema=False).params
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)

  config = tiny.get_config()
  config.data.dir = str(tiny_data)
  config.train.update(schedule="constant", steps=step + 2, log_every=1, eval_every=100000, checkpoint_every=100000)
  single = train.train(config, tmp_path / "single")
  assert single["train"]["loss"] == pytest.approx(straight[0]["train"]["loss"], rel=1e-4)
  c = checkpoints.load_params(tmp_path / "single", use_ema=False).params
  for x, y in zip(jax.tree.leaves(b), jax.tree.leaves(c)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
