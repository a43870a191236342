"""The training entry point: devices, resume, preemption, stages chained through codes on disk, bad configs."""

import functools
import json
import os
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import pytest
from conftest import REPO, tiny_config, tiny_train_command, xla_flags

from argmax_music import checkpoints, encode, sample, stack, tasks, train
from argmax_music.config import ConfigError
from argmax_music.data import dataset
from argmax_music.preemption import Preemption
from configs import base, tiny


def params_of(workdir):
  return checkpoints.load_params(workdir, use_ema=False).params


@pytest.mark.slow
def test_one_and_four_devices_give_the_same_first_step(tiny_data, tmp_path):
  one = train.train(tiny_config(tiny_data, steps=1, log_every=1), tmp_path / "one", devices=jax.devices()[:1])
  four = train.train(tiny_config(tiny_data, steps=1, log_every=1), tmp_path / "four")
  assert len(jax.devices()) == 4
  assert one["train"]["loss"] == pytest.approx(four["train"]["loss"], rel=1e-5)
  assert one["eval"]["nll_bits"] == pytest.approx(four["eval"]["nll_bits"], rel=1e-5)


@pytest.mark.slow
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
  ema_a = checkpoints.load_params(tmp_path / "straight").params
  ema_b = checkpoints.load_params(tmp_path / "resumed").params
  for x, y in zip(jax.tree.leaves(ema_a), jax.tree.leaves(ema_b)):
    np.testing.assert_array_equal(x, y)
  assert (tmp_path / "straight" / "run.json").exists()
  assert list((tmp_path / "straight" / "tb").glob("events.*"))
  assert checkpoints.load_params(tmp_path / "straight", "best").step == 4


@pytest.mark.slow
def test_sigterm_twice_leaves_a_restorable_checkpoint(tiny_data, tmp_path):
  workdir = tmp_path / "run"
  cmd = tiny_train_command(workdir, tiny_data, steps=100000, log_every=1, eval_every=100000, checkpoint_every=100000)
  env = dict(os.environ, XLA_FLAGS=xla_flags(1))
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
  _, _, params, _, step, _ = checkpoints.load_params(workdir)
  assert 3 <= step < 100000
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


def test_sigterm_after_a_stop_by_signal_is_ignored_and_otherwise_restored():
  """Without a signal, leaving training restores SIGTERM's handler; after a stop by signal, a second SIGTERM (as
  schedulers send) is ignored instead of killing the process while it writes its last files."""
  previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
  try:
    with Preemption() as untouched:
      pass
    assert not untouched.received and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with Preemption() as stopped:
      os.kill(os.getpid(), signal.SIGTERM)
      assert stopped.requested(0)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGTERM)  # A second one, once training has returned: the process lives on.
  finally:
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
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
  config, task, params, state, _, _ = checkpoints.load_params(tiny_stack / "level1")
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
  assert checkpoints.load_params(tmp_path / "level2").task.signal_classes == 16
  # The two-level stack decodes top-down, and its codes file holds every level's codes.
  levels, _ = stack.load_stack([tiny_stack / "level1", tmp_path / "level2"], None)
  np.savez(tmp_path / "top.npz", level2=np.arange(6)[None] % 16)
  sample.sample("upsample", levels, None, tmp_path / "up", codes_file=str(tmp_path / "top.npz"), temperatures=[0.0])
  with np.load(tmp_path / "up" / "codes.npz") as saved:
    assert saved["level2"].shape == (1, 6) and saved["level1"].shape == (1, 24)
  transformer = tiny_config(codes_dir, "prior")
  transformer.prior.kind = "transformer"
  assert train.train(transformer, tmp_path / "prior_tf")["step"] == 4


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("data.crop", 150, "data.crop=150 is not a multiple of the hop 8"),
    ("train.batch_size", 6, "train.batch_size=6 is not divisible by the 4 devices"),
    ("data.dir", "/nonexistent/codes", "data.dir: /nonexistent/codes/manifest.json: no manifest"),
    ("train.schedule", "linear", "train.schedule='linear'"),
  ],
)
def test_bad_config_values_fail_naming_the_key(tiny_data, tmp_path, key, value, message):
  config = tiny_config(tiny_data)
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    train.train(config, tmp_path / "bad")


def test_unknown_prior_input_noise_kind_fails_naming_the_key(tiny_data, tmp_path):
  config = tiny_config(tiny_data, "prior")
  config.prior.input_noise_kind = "scheduled"
  with pytest.raises(ConfigError, match="prior.input_noise_kind='scheduled'; expected 'uniform' or 'sampled'"):
    train.train(config, tmp_path / "bad")


@pytest.mark.slow
def test_prior_on_audio_is_refused(tiny_data, tmp_path):
  with pytest.raises(ConfigError, match="the prior trains on codes"):
    train.train(tiny_config(tiny_data, "prior"), tmp_path / "bad")


def test_unknown_config_key_on_the_command_line_is_named(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "argmax_music.train",
      "--config=configs/tiny.py",
      f"--workdir={tmp_path}",
      "--config.train.stepz=3",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
  )
  assert result.returncode != 0
  assert "stepz" in result.stderr


@pytest.mark.parametrize(
  "module,arg",
  [
    ("cpu_demo", "ada"),
    ("cpu_demo", "prior"),
    ("cpu_demo", "prior,size=long"),
    ("tpu_hop20", "ada"),
    ("tpu_hop20", "prior"),
    ("paper", ""),
    ("paper", "level=2,quantizer=vq"),
    ("paper", "stage=prior"),
    ("paper", "quantizer=vq_ema"),
    ("piano", "upsampler2"),
  ],
)
def test_every_config_builds_its_model(module, arg):
  import importlib

  config = importlib.import_module(f"configs.{module}").get_config(arg)
  task = tasks.make_task(config, 256 if config.data.dir.endswith("prepared") else config.model.num_codes)
  shapes = jax.eval_shape(task.init, jax.random.key(0), task.example_batch())
  assert jax.tree.leaves(shapes)
  task.check(types.SimpleNamespace(kind="codes" if config.stage == "prior" else "mu_law"))  # crop vs hop and RF


def test_paper_vq_is_plain_and_vq_ema_is_labelled():
  from configs import paper

  plain, ema = paper.get_config("quantizer=vq").model.quantizer, paper.get_config("quantizer=vq_ema").model.quantizer
  assert plain.kind == ema.kind == "vq"
  assert plain.ema_decay == 0 and plain.restart_threshold == 0
  assert ema.ema_decay > 0 and ema.restart_threshold > 0


def test_paper_config_rejects_unknown_options():
  from configs import paper

  with pytest.raises(KeyError, match="levle"):
    paper.get_config("levle=2")


@pytest.mark.slow
def test_bfloat16_compute_trains(tiny_data, tmp_path):
  config = tiny_config(tiny_data, steps=2)
  config.model.dtype = "bfloat16"
  result = train.train(config, tmp_path / "bf16")
  assert result["step"] == 2 and np.isfinite(result["train"]["loss"]) and result["nan_steps"] == 0
  params = checkpoints.load_params(tmp_path / "bf16", use_ema=False).params
  assert all(x.dtype == np.float32 for x in jax.tree.leaves(params))  # parameters stay float32


@pytest.mark.slow
def test_collapse_reported(tiny_data, tmp_path, caplog):
  """No diversity loss and a large learning rate: every vector picks one code; eval.json says so, the log warns."""
  config = tiny_config(tiny_data, steps=6, eval_every=6, learning_rate=0.3)
  config.model.quantizer.update(diversity_weight=0.0, code_diversity_weight=0.0)
  with caplog.at_level("WARNING"):
    result = train.train(config, tmp_path / "run")
  written = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert written["collapsed"] is True and result["eval"]["collapsed"] is True
  assert written["entropy_bits"] < 1.0 and written["usage"] < 0.1 and written["step"] == 6
  assert written["code_bits_per_s"] == pytest.approx(written["entropy_bits"] * 16000 / 8)
  assert any("the codes have collapsed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stage,key", [("prior", "prior.wavenet"), ("ada", "model.decoder")])
@pytest.mark.slow
def test_crop_shorter_than_receptive_field(tiny_data, tiny_stack, tmp_path, stage, key):
  config = tiny_config(tiny_stack / "codes" if stage == "prior" else tiny_data, stage)
  config.data.crop = 8  # The receptive field of both tiny WaveNets is 16.
  with pytest.raises(ConfigError, match=rf"data.crop=8 is shorter than the receptive field of {key} \(16 timesteps"):
    train.train(config, tmp_path / "short")
  config.data.allow_short_crop = True
  tasks.make_task(config, 16).check(types.SimpleNamespace(kind="codes"))  # The explicit override lets it pass.


@pytest.mark.slow
def test_eval_pairs_ema_params_with_the_codebook_averaged_alike():
  """VQ with an EMA codebook and Polyak parameters: eval uses the averaged parameters and the averaged codebook."""
  from argmax_music import train_state

  config = tiny.get_config()
  config.model.quantizer.update(kind="vq", ema_decay=0.9)
  config.train.update(ema_decay=0.5, ema_debias=False)  # Plain EMA: one step leaves half the initial codebook.
  task = tasks.make_task(config, 256)
  optimizer = train_state.make_optimizer(config.train)
  batch = jax.random.randint(jax.random.key(1), (4, 160), 0, 256)
  state = train_state.create_state(task, optimizer, jax.random.key(0), batch)
  step = jax.jit(functools.partial(train_state.train_step, task, optimizer))  # Compiled: op by op takes ~40 s.
  new, _ = step(state, batch, jax.random.key(2))
  params, model_state = new.eval_variables()
  assert params is new.ema_params and model_state is new.ema_model_state
  for before, live, averaged in zip(*map(jax.tree.leaves, (state.model_state, new.model_state, model_state))):
    np.testing.assert_allclose(averaged, 0.5 * before + 0.5 * live, rtol=1e-6)
  assert not np.allclose(jax.tree.leaves(model_state)[0], jax.tree.leaves(new.model_state)[0])


@pytest.mark.slow
def test_level_with_codes_from_keeps_the_encoder_codebook_and_codes(tiny_data, tmp_path):
  source = tiny_config(tiny_data)
  base.use_vq_ema(source)  # A codebook in the model state, updated in training: it too must stay.
  train.train(source, tmp_path / "source")
  config = tiny_config(tiny_data, weight_decay=0.1, ema_decay=0.9)  # Neither may move a kept parameter.
  base.use_vq_ema(config)
  config.model.codes_from = str(tmp_path / "source")
  config.model.decoder_input_noise = 0.3
  config.model.decoder.update(layers=6, cycle=3, residual_channels=8, gate_channels=8)
  train.train(config, tmp_path / "upsampler")
  before = checkpoints.load_params(tmp_path / "source")
  for use_ema in (False, True):
    after = checkpoints.load_params(tmp_path / "upsampler", use_ema=use_ema)
    kept = lambda t: (t.params["encoder"], t.model_state)  # (An EMA codebook is model state, not a parameter.)
    for x, y in zip(jax.tree.leaves(kept(before)), jax.tree.leaves(kept(after)), strict=True):
      np.testing.assert_array_equal(x, y)
  assert after.params["decoder"]["conv_w"].shape[0] == 6  # Its own decoder, deeper than the source's.
  # Its codes are the source's, by value and by name: encoded, they carry the source's run id.
  made = encode.encode_dataset(tmp_path / "upsampler", tmp_path / "codes")["made_by"]
  assert made["run_id"] == before.run["run_id"] == after.run["codes_of"]["run_id"]
  encode.encode_dataset(tmp_path / "source", tmp_path / "source_codes")
  codes = [dataset.PreparedDataset(tmp_path / name).arrays("train") for name in ("codes", "source_codes")]
  for a, b in zip(*codes, strict=True):
    np.testing.assert_array_equal(a, b)
  config.model.num_codes = 32
  with pytest.raises(ConfigError, match=r"model.num_codes: 16 -> 32"):
    train.train(config, tmp_path / "other")
