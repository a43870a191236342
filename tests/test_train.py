"""The training entry point: devices, resume, preemption, stages chained through codes on disk, bad configs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from argmax_music import encode, train
from argmax_music.data import dataset
from conftest import REPO
from configs import tiny


def tiny_config(data_dir, stage="ada", **train_overrides):
  c = tiny.get_config(stage)
  c.data.dir = str(data_dir)
  c.train.update(train_overrides)
  return c


def params_of(workdir):
  return train.load_trained(workdir, use_ema=False)[2]


def test_one_and_four_devices_give_the_same_first_step(tiny_data, tmp_path):
  one = train.train(tiny_config(tiny_data, steps=1, log_every=1), tmp_path / "one", devices=jax.devices()[:1])
  four = train.train(tiny_config(tiny_data, steps=1, log_every=1), tmp_path / "four")
  assert len(jax.devices()) == 4
  assert one["train"]["loss"] == pytest.approx(four["train"]["loss"], rel=1e-5)
  assert one["eval"]["nll_bits"] == pytest.approx(four["eval"]["nll_bits"], rel=1e-5)


def test_resumed_run_matches_uninterrupted_run_bitwise(tiny_data, tmp_path):
  config = lambda steps: tiny_config(tiny_data, steps=steps, schedule="constant", ema_decay=0.9)
  train.train(config(4), tmp_path / "straight")
  first = train.train(config(2), tmp_path / "resumed")
  assert first["step"] == 2
  second = train.train(config(4), tmp_path / "resumed")
  assert second["step"] == 4
  a, b = params_of(tmp_path / "straight"), params_of(tmp_path / "resumed")
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  ema_a = train.load_trained(tmp_path / "straight")[2]
  ema_b = train.load_trained(tmp_path / "resumed")[2]
  for x, y in zip(jax.tree.leaves(ema_a), jax.tree.leaves(ema_b)):
    np.testing.assert_array_equal(x, y)
  assert (tmp_path / "straight" / "run.json").exists()
  assert list((tmp_path / "straight" / "tb").glob("events.*"))
  assert (tmp_path / "straight" / "best").is_dir()


def test_sigterm_twice_leaves_a_restorable_checkpoint(tiny_data, tmp_path):
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "argmax_music.train", "--config=configs/tiny.py", f"--workdir={workdir}",
         f"--config.data.dir={tiny_data}", "--config.train.steps=100000", "--config.train.log_every=1",
         "--config.train.eval_every=100000", "--config.train.checkpoint_every=100000"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
  seen = []
  deadline = time.monotonic() + 120
  for line in proc.stderr:
    seen.append(line)
    if "step 3/" in line or time.monotonic() > deadline:
      break
  proc.send_signal(signal.SIGTERM)
  time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)  # A second one, while the first one's save is under way.
  _, rest = proc.communicate(timeout=120)
  log = "".join(seen) + rest
  assert proc.returncode == 0, log[-3000:]
  assert "stopped by signal" in log
  _, _, params, _, step = train.load_trained(workdir)
  assert 3 <= step < 100000
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def test_stages_chain_through_codes_on_disk(tiny_data, tiny_stack, tmp_path):
  codes_dir = tiny_stack / "codes"
  source = dataset.PreparedDataset(tiny_data)
  codes = dataset.PreparedDataset(codes_dir)
  manifest = codes.manifest
  assert codes.kind == "codes" and codes.num_classes == 16 and codes.rate == 16000 / 8
  assert manifest["made_by"]["step"] == 4 and manifest["made_by"]["workdir"].endswith("level1")
  for split in dataset.SPLITS:
    for a, c in zip(source.arrays(split), codes.arrays(split)):
      assert len(c) == len(a) // 8 and c.dtype == np.uint16 and c.max() < 16
  # The codes match what the encoder gives on a training-sized window.
  config, task, params, state, _ = train.load_trained(tiny_stack / "level1")
  window = np.asarray(source.arrays("train")[0][:160], np.int32)[None]
  direct = task.model.apply({"params": params, **state}, window, method=task.model.encode)
  np.testing.assert_array_equal(direct[0], codes.arrays("train")[0][:20])
  # Re-running finishes nothing new and keeps the files.
  assert encode.encode_dataset(tiny_stack / "level1", codes_dir) == manifest
  # The prior trained on these codes.
  assert json.loads((tiny_stack / "prior" / "run.json").read_text())["data_made_by"] == manifest["made_by"]

  level2 = tiny_config(codes_dir)
  level2.data.crop = 32
  level2.model.encoder.strides = (2, 2)
  result = train.train(level2, tmp_path / "level2")
  assert result["step"] == 4
  assert train.load_trained(tmp_path / "level2")[1].signal_classes == 16
  transformer = tiny_config(codes_dir, "prior")
  transformer.prior.kind = "transformer"
  assert train.train(transformer, tmp_path / "prior_tf")["step"] == 4


@pytest.mark.parametrize("key,value,message", [
    ("data.crop", 150, "data.crop=150 is not a multiple of the hop 8"),
    ("train.batch_size", 6, "train.batch_size=6 is not divisible by the 4 devices"),
    ("data.dir", "/nonexistent/codes", "data.dir: /nonexistent/codes/manifest.json: no manifest"),
    ("train.schedule", "linear", "train.schedule='linear'"),
])
def test_bad_config_values_fail_naming_the_key(tiny_data, tmp_path, key, value, message):
  config = tiny_config(tiny_data)
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(train.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    train.train(config, tmp_path / "bad")


def test_prior_on_audio_is_refused(tiny_data, tmp_path):
  with pytest.raises(train.ConfigError, match="the prior trains on codes"):
    train.train(tiny_config(tiny_data, "prior"), tmp_path / "bad")


def test_unknown_config_key_on_the_command_line_is_named(tmp_path):
  result = subprocess.run([sys.executable, "-m", "argmax_music.train", "--config=configs/tiny.py",
                           f"--workdir={tmp_path}", "--config.train.stepz=3"], cwd=REPO,
                          capture_output=True, text=True)
  assert result.returncode != 0
  assert "stepz" in result.stderr


@pytest.mark.parametrize("module,arg", [("cpu_demo", "ada"), ("cpu_demo", "prior"), ("tpu_hop20", "ada"),
                                        ("tpu_hop20", "prior"), ("paper", ""), ("paper", "level=2,quantizer=vq"),
                                        ("paper", "stage=prior")])
def test_every_config_builds_its_model(module, arg):
  import importlib
  config = importlib.import_module(f"configs.{module}").get_config(arg)
  task = train.Task(config, 256 if config.data.dir.endswith("prepared") else config.model.num_codes)
  length = train.example_length(config, task)
  shapes = jax.eval_shape(task.model.init, jax.random.key(0), jax.numpy.zeros((1, length), jax.numpy.int32))
  assert jax.tree.leaves(shapes)
  if task.is_ada:
    assert config.data.crop % task.model.hop == 0


def test_paper_config_rejects_unknown_options():
  from configs import paper
  with pytest.raises(KeyError, match="levle"):
    paper.get_config("levle=2")


def test_bfloat16_compute_trains(tiny_data, tmp_path):
  config = tiny_config(tiny_data, steps=2)
  config.model.dtype = "bfloat16"
  result = train.train(config, tmp_path / "bf16")
  assert result["step"] == 2 and np.isfinite(result["train"]["loss"]) and result["nan_steps"] == 0
  params = train.load_trained(tmp_path / "bf16", use_ema=False)[2]
  assert all(x.dtype == np.float32 for x in jax.tree.leaves(params))  # parameters stay float32
