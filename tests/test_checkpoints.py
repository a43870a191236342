"""The checkpoint module: best by eval NLL across resumes, corrupt checkpoints, the workdir lock, params-only loads."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import optax
import pytest
from conftest import REPO, tiny_config, tiny_train_command, xla_flags

from argmax_music import checkpoints, encode, sharding, stack, tasks, train, train_state, workdir_guard
from argmax_music.config import ConfigError


@pytest.fixture
def scripted_eval(monkeypatch):
  """Eval NLLs taken from a list, in order (the real eval runs; only its NLL is replaced)."""
  values = []
  real = train.run_eval

  def run_eval(*args):
    return {**real(*args), "nll_bits": values.pop(0)}

  monkeypatch.setattr(train, "run_eval", run_eval)
  return values


@pytest.mark.slow
def test_best_survives_resume(tiny_data, tmp_path, scripted_eval):
  workdir = tmp_path / "run"
  config = lambda steps: tiny_config(tiny_data, steps=steps, eval_every=2, checkpoint_every=2, keep=1)
  scripted_eval[:] = [5.0, 6.0, 4.0]
  train.train(config(2), workdir)
  train.train(config(4), workdir)  # Resumed; its eval (6.0) is worse than the saved best (5.0).
  assert checkpoints.load_params(workdir, "best").step == 2
  assert checkpoints.load_params(workdir, "latest").step == 4
  train.train(config(6), workdir)  # A better eval (4.0) becomes the best; the old best goes.
  assert checkpoints.load_params(workdir, "best").step == 6
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [6]


def truncate_checkpoint(workdir, step):
  for root, _, files in os.walk(workdir / "checkpoints" / str(step) / "state"):
    for name in files:
      path = os.path.join(root, name)
      os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.slow
def test_corrupt_latest_checkpoint(tiny_data, tmp_path, caplog):
  workdir = tmp_path / "run"
  train.train(tiny_config(tiny_data, steps=4, checkpoint_every=2, eval_every=100), workdir)
  truncate_checkpoint(workdir, 4)
  with caplog.at_level(logging.WARNING):
    result = train.train(tiny_config(tiny_data, steps=5, checkpoint_every=2, eval_every=100), workdir)
  assert result["step"] == 5
  assert any("checkpoints/4 does not restore" in r.getMessage() for r in caplog.records)
  assert (workdir / "corrupt_checkpoints" / "4").is_dir()
  # With keep=1 there is nothing to fall back to: the run stops naming the checkpoint (no restart from 0).
  single = tmp_path / "single"
  train.train(tiny_config(tiny_data, steps=2, checkpoint_every=2, eval_every=100, keep=1), single)
  truncate_checkpoint(single, 2)
  with pytest.raises(checkpoints.CheckpointError, match=r"checkpoint\(s\) \[2\] in .*single/checkpoints"):
    train.train(tiny_config(tiny_data, steps=4, checkpoint_every=2, eval_every=100, keep=1), single)


@pytest.mark.slow
def test_workdir_lock(tiny_data, tmp_path):
  workdir = tmp_path / "run"
  cmd = tiny_train_command(workdir, tiny_data, steps=100000, log_every=1, eval_every=100000)
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))
  with tempfile.TemporaryFile("w+") as log:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
      log.seek(0)
      if "step 2/" in log.read():
        break
      time.sleep(0.1)
    try:
      with pytest.raises(ConfigError, match=rf"is in use by process {proc.pid} on "):
        train.train(tiny_config(tiny_data, steps=2), workdir)
    finally:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
  assert (workdir / "lock.json").exists()  # Left behind by the killed trainer: stale now.
  assert train.train(tiny_config(tiny_data, steps=3, eval_every=100), workdir)["step"] == 3
  assert not (workdir / "lock.json").exists()


def test_gs_workdir_is_not_locked(caplog):
  with caplog.at_level(logging.WARNING), workdir_guard.WorkdirLock("gs://bucket/run") as lock:
    assert not lock.held
  assert any("no workdir lock" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_sampling_and_encoding_restore_no_optimizer_state(tiny_stack, tmp_path):
  """A checkpoint whose optimizer state has another shape (SGD with momentum, not Adam) still samples and encodes."""
  level = tmp_path / "level1"
  shutil.copytree(tiny_stack / "level1", level)
  trained = checkpoints.load_params(level)
  config, task = trained.config, trained.task
  mesh = sharding.make_mesh()
  ckpt = checkpoints.Checkpoints(level, config.train.keep)
  state, data_state = ckpt.restore(
    trained.step, train_state.abstract_state(task, train_state.make_optimizer(config.train), mesh)
  )
  other = state.replace(opt_state=optax.sgd(0.1, momentum=0.9).init(state.params))
  ckpt.save(trained.step + 1, other, data_state, force=True)
  ckpt.close()
  stage = stack.Stage.load(level)
  assert stage.step == trained.step + 1
  for x, y in zip(jax.tree.leaves(stage.params), jax.tree.leaves(trained.params)):
    np.testing.assert_array_equal(x, y)
  manifest = encode.encode_dataset(level, tmp_path / "codes")
  assert manifest["made_by"]["step"] == trained.step + 1


def test_sampling_and_encoding_do_not_import_the_trainer():
  code = (
    "import argmax_music.sample, argmax_music.encode, sys; "
    "assert not {'argmax_music.train', 'argmax_music.train_state', 'optax'} & set(sys.modules)"
  )
  subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.slow
def test_checkpoint_of_the_old_format_loads_for_sampling_and_asks_to_retrain(tiny_data, tmp_path):
  """Format 1 (before ema_model_state and the best-by-metric manager): parameters load; resuming is refused."""
  config = tiny_config(tiny_data)
  task = tasks.make_task(config, 256, 16000.0)
  optimizer = train_state.make_optimizer(config.train)
  state = train_state.create_state(task, optimizer, jax.random.key(0), jax.numpy.zeros((1, 160), jax.numpy.int32))
  old = {k: v for k, v in vars(state).items() if k != "ema_model_state"}
  workdir = tmp_path / "old"
  ckpt = checkpoints.Checkpoints(workdir, config.train.keep)
  ckpt.save(3, old, {}, force=True)
  ckpt.close()
  run = {
    "run_id": "x",
    "config": config.to_dict(),
    "signal_classes": 256,
    "data_rate": 16000.0,
    "sample_rate": 16000,
    "data_made_by": {},
    "version": "0.1.0",
  }
  (workdir / "run.json").write_text(json.dumps(run))
  trained = checkpoints.load_params(workdir)
  assert trained.step == 3
  for x, y in zip(jax.tree.leaves(trained.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ConfigError, match="written before the checkpoint format changed.*retrain"):
    train.train(config, workdir)


def folder_bytes(path) -> int:
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.slow
def test_exported_stack_loads_with_the_same_parameters(tiny_stack, tmp_path):
  """`export_params` writes parameters only: a stack of exports loads (its provenance still checks), with the
  parameters the workdirs sample with, in less room; `sample --pretrained=FOLDER` finds it."""
  from argmax_music import pretrained

  out = tmp_path / "shipped"
  for name in ("level1", "prior"):
    checkpoints.export_params(tiny_stack / name, out / name)
    assert folder_bytes(out / name / "checkpoints") < folder_bytes(tiny_stack / name / "checkpoints") / 2
  with pytest.raises(FileExistsError, match="already there"):
    checkpoints.export_params(tiny_stack / "level1", out / "level1")
  levels, prior = stack.open_stack(out)
  originals, original_prior = stack.open_stack(tiny_stack)
  for exported, original in ((levels[0], originals[0]), (prior, original_prior)):
    assert exported.step == original.step
    for x, y in zip(jax.tree.leaves(exported.params), jax.tree.leaves(original.params), strict=True):
      np.testing.assert_array_equal(x, y)
  assert pretrained.locate(str(out)) == out
  with pytest.raises(stack.StackError, match="--pretrained=nowhere"):
    pretrained.locate("nowhere")


@pytest.mark.slow
def test_export_ships_each_folder_from_the_last_stage_that_trained_it(tiny_stack, tmp_path, monkeypatch):
  """`pretrained.export` writes OUT/NAME from the last of the stages that trained it (the shipped level 2 from the
  upsampler, not from level 2's first run), keeps OUT's card and drops its old weights."""
  from argmax_music import pretrained

  monkeypatch.setattr(pretrained, "TRAINED_BY", {"level1": ("first_run", "level1"), "prior": ("prior",)})
  out = tmp_path / "piano"
  (out / "level1" / "checkpoints" / "7").mkdir(parents=True)
  (out / "README.md").write_text("the card")
  pretrained.export(tiny_stack, out)
  assert sorted(p.name for p in out.iterdir()) == ["README.md", "level1", "prior"]
  assert (out / "README.md").read_text() == "the card" and not (out / "level1" / "checkpoints" / "7").exists()
  assert checkpoints.read_run(out / "level1")["exported_from"]["workdir"] == str(tiny_stack / "level1")


def test_a_run_older_than_a_changed_default_loads_as_it_trained():
  """A run recorded before decoder_blind_fraction existed trained without blind sequences: it loads with 0, not with
  today's default; a key the run recorded keeps its value; a new key without a BEFORE_KEY entry takes the default."""
  from argmax_music import config
  from configs import base

  recorded = config.load("configs/tiny.py").to_dict()
  del recorded["model"]["decoder_blind_fraction"], recorded["model"]["decoder_input_noise"]
  del recorded["model"]["quantizer"]["balance_rate"]
  recorded["model"]["upsampler"]["normalize"] = True
  loaded = config.run_config(recorded)
  assert base.get_config().model.decoder_blind_fraction > 0
  assert loaded.model.decoder_blind_fraction == 0.0 and loaded.model.decoder_input_noise == 0.0
  assert loaded.model.upsampler.normalize is True
  assert loaded.model.quantizer.balance_rate == base.get_config().model.quantizer.balance_rate
