"""Faults: kill -9 anywhere, numerical faults, hostile input files, incompatible checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, tiny_config, tiny_train_command, write_tone

from argmax_music import checkpoints, encode, tasks, train
from argmax_music.config import ConfigError
from argmax_music.data import dataset, pipeline, prepare


def kill_when(cmd, ready, timeout=120):
  """Start `cmd`, SIGKILL it once ready(its stderr so far) is true; returns that stderr."""
  import tempfile

  with tempfile.TemporaryFile("w+") as log:
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
      log.seek(0)
      if ready(log.read()):
        proc.send_signal(signal.SIGKILL)
        break
      time.sleep(0.01)
    proc.wait()
    log.seek(0)
    return log.read()


@pytest.mark.slow
def test_kill_9_during_training_and_saves_then_resume_matches(tiny_data, tmp_path):
  config = tiny_config(tiny_data, steps=10, checkpoint_every=1, log_every=1, eval_every=100)
  train.train(config, tmp_path / "straight")
  cmd = tiny_train_command(tmp_path / "killed", tiny_data, steps=10, checkpoint_every=1, log_every=1, eval_every=100)
  kill_when(cmd, lambda log: "step 3/10" in log)  # during a step (a save of every step is under way, too)
  kill_when(cmd, lambda log: "resumed" in log and "checkpoint at step" in log.split("resumed")[1])  # mid-save
  train.train(config, tmp_path / "killed")
  a = checkpoints.load_params(tmp_path / "straight", use_ema=False).params
  b, step = checkpoints.load_params(tmp_path / "killed", use_ema=False)[2::2][:2]
  assert step == 10
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_kill_9_during_prepare_and_encode_then_rerun_matches(tiny_data, tiny_stack, tmp_path):
  folder = tmp_path / "long"
  for i in range(6):
    write_tone(folder / f"t{i}.wav", 20.0, 200 + 30 * i, rate=44100)  # Resampling makes each file take a while.
  prepare.prepare(folder, tmp_path / "straight")
  cmd = [
    sys.executable,
    "-m",
    "argmax_music.data.prepare",
    f"--input={folder}",
    f"--output={tmp_path / 'killed'}",
    "--workers=1",
  ]
  manifest = tmp_path / "killed" / "manifest.json"
  kill_when(cmd, lambda _: manifest.exists() and len(json.loads(manifest.read_text())["splits"]["train"]) >= 2)
  for array in (tmp_path / "killed").rglob("*.npy"):  # whole or absent (a cut write leaves only a .tmp)
    assert np.load(array).shape[0] > 0
  (tmp_path / "killed" / "train" / ".cut.npy.tmp").write_bytes(b"\x93NUMPY")  # as a kill mid-write leaves one
  prepare.prepare(folder, tmp_path / "killed")
  assert not list((tmp_path / "killed").rglob("*.tmp"))
  a, b = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("straight", "killed"))
  key = lambda m: sorted((e["source"], e["array"], e["length"], e["sha256"]) for v in m["splits"].values() for e in v)
  assert key(a) == key(b) and len(a["splits"]["train"]) == 6  # and a held-out tail of each in validation
  for e in (e for v in a["splits"].values() for e in v):
    np.testing.assert_array_equal(
      np.load(tmp_path / "straight" / e["array"]), np.load(tmp_path / "killed" / e["array"])
    )

  cmd = [
    sys.executable,
    "-m",
    "argmax_music.encode",
    f"--workdir={tiny_stack / 'level1'}",
    f"--output={tmp_path / 'codes'}",
  ]
  codes_manifest = tmp_path / "codes" / "manifest.json"
  kill_when(cmd, lambda _: codes_manifest.exists())
  encode.encode_dataset(tiny_stack / "level1", tmp_path / "codes")
  reference = dataset.PreparedDataset(tiny_stack / "codes")
  rerun = dataset.PreparedDataset(tmp_path / "codes")
  for split in dataset.SPLITS:
    assert sorted(e["source"] for e in reference.entries(split)) == sorted(e["source"] for e in rerun.entries(split))
    by_source = {e["source"]: e for e in rerun.entries(split)}
    for e in reference.entries(split):
      np.testing.assert_array_equal(
        np.load(reference.root / e["array"]), np.load(rerun.root / by_source[e["source"]]["array"])
      )


PATTERN = np.array([255, 0, 255, 0, 255, 0, 255, 0], np.uint8)


@pytest.fixture
def poisoned_second_batch(monkeypatch):
  """A loss that is NaN on the second batch of a run (marked by a pattern planted in it)."""
  real_iterator, real_loss = pipeline.train_iterator, tasks.AdaTask.loss

  class Poisoned:
    def __init__(self, it):
      self.it, self.count = it, 0

    def __next__(self):
      batch = next(self.it).copy()
      self.count += 1
      if self.count == 2:
        batch[0, :8] = PATTERN
      return batch

    def get_state(self):
      return self.it.get_state()

    def set_state(self, state):
      self.it.set_state(state)

  def loss(self, params, model_state, batch, rng):
    value, aux = real_loss(self, params, model_state, batch, rng)
    return jnp.where(jnp.all(batch[0, :8] == PATTERN), jnp.nan, value), aux

  monkeypatch.setattr(pipeline, "train_iterator", lambda *a, **k: Poisoned(real_iterator(*a, **k)))
  monkeypatch.setattr(tasks.AdaTask, "loss", loss)


@pytest.mark.slow
def test_non_finite_step_is_skipped_and_counted(tiny_data, tmp_path, poisoned_second_batch):
  result = train.train(tiny_config(tiny_data), tmp_path / "run")
  assert result["nan_steps"] == 1 and result["step"] == 4
  params = checkpoints.load_params(tmp_path / "run", use_ema=False).params
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


@pytest.mark.slow
def test_non_finite_step_stops_naming_step_sources_and_checkpoint(tiny_data, tmp_path, poisoned_second_batch):
  with pytest.raises(FloatingPointError) as error:
    train.train(tiny_config(tiny_data, on_nan="stop", checkpoint_every=1), tmp_path / "run")
  message = str(error.value)
  assert "at step 2" in message and "step 1" in message and str(tmp_path / "run" / "checkpoints") in message
  assert message.count(".wav@") == 4  # every crop of the batch, by file and offset
  assert checkpoints.load_params(tmp_path / "run").step == 1  # the last good checkpoint restores


def test_hostile_folder_is_prepared_with_each_problem_named_once(tmp_path):
  root = tmp_path / "hostile"
  write_tone(root / "good one.wav", 2.0, 220)
  write_tone(root / "ünïcødé name ♪.flac", 2.0, 330)
  (root / "zero.wav").write_bytes(b"")
  write_tone(root / "truncated_src.wav", 2.0, 440)
  data = (root / "truncated_src.wav").read_bytes()
  (root / "truncated_src.wav").unlink()
  (root / "truncated.wav").write_bytes(data[:60])  # a header and a few samples
  (root / "text.wav").write_text("hello, I am not audio")
  sf.write(root / "one_sample.wav", np.array([0.5]), 16000)
  t = np.arange(32000) / 16000
  sf.write(
    root / "eight_channels.wav", np.stack([0.3 * np.sin(2 * np.pi * 100 * (c + 1) * t) for c in range(8)], 1), 16000
  )
  sf.write(root / "hires.wav", 0.5 * np.sin(2 * np.pi * 440 * np.arange(192000) / 96000), 96000, subtype="PCM_24")
  sf.write(root / "loud_float.wav", 3.0 * np.sin(2 * np.pi * 440 * t), 16000, subtype="FLOAT")
  sf.write(root / "silence.wav", np.zeros(32000), 16000)
  os.symlink(root / "loop.wav", root / "loop.wav")
  (root / "locked.wav").write_bytes((root / "good one.wav").read_bytes())
  (root / "locked.wav").chmod(0)

  manifest = prepare.prepare(root, tmp_path / "out", min_seconds=1.0)
  skipped = {s["source"]: s["reason"] for s in manifest["skipped"]}
  assert len(skipped) == len(manifest["skipped"])  # each problem once
  prepared = {e["source"] for v in manifest["splits"].values() for e in v}
  too_short = {s["source"] for s in manifest["too_short"]}
  assert {"good one.wav", "ünïcødé name ♪.flac", "eight_channels.wav", "hires.wav", "loud_float.wav"} <= prepared
  assert {"zero.wav", "text.wav", "silence.wav", "loop.wav"} <= set(skipped)
  assert "silent" in skipped["silence.wav"] and "loop.wav" in skipped["loop.wav"]
  assert {"one_sample.wav", "truncated.wav"} <= too_short | set(skipped)
  if os.geteuid() != 0:  # root reads a chmod-000 file anyway
    assert "locked.wav" in skipped
  # Every file is accounted for exactly once.
  everything = prepare.find_audio_files(root)
  assert sorted(prepared | too_short | set(skipped)) == sorted(everything)
  data = dataset.PreparedDataset(tmp_path / "out")
  for split in dataset.SPLITS:
    for e, a in zip(data.entries(split), data.arrays(split)):
      assert len(a) == e["length"] and a.dtype == np.uint8
  hires = next(e for v in manifest["splits"].values() for e in v if e["source"] == "hires.wav")
  assert abs(hires["length"] - 32000) <= 2  # 96 kHz resampled to 16 kHz


@pytest.mark.slow
def test_incompatible_config_names_the_differing_keys(tiny_data, tmp_path):
  train.train(tiny_config(tiny_data, steps=1), tmp_path / "run")
  changed = tiny_config(tiny_data, steps=2)
  changed.model.num_codes = 32
  changed.model.decoder.residual_channels = 8
  with pytest.raises(ConfigError) as error:
    train.train(changed, tmp_path / "run")
  message = str(error.value)
  assert "model.num_codes: 16 -> 32" in message and "model.decoder.residual_channels: 16 -> 8" in message
  assert "train.steps" not in message
  assert train.train(tiny_config(tiny_data, steps=2), tmp_path / "run")["step"] == 2  # more steps: fine
  run = json.loads((tmp_path / "run" / "run.json").read_text())
  assert run["version"] and run["config"]["model"]["num_codes"] == 16
  del run["config"]["model"]["decoder_input_noise"]  # A run older than the switch: read as it trained, 0.
  (tmp_path / "run" / "run.json").write_text(json.dumps(run))
  assert train.train(tiny_config(tiny_data, steps=3), tmp_path / "run")["step"] == 3
  noisy = tiny_config(tiny_data, steps=4)
  noisy.model.decoder_input_noise = 0.1
  with pytest.raises(ConfigError, match=r"model.decoder_input_noise: 0.0 -> 0.1"):
    train.train(noisy, tmp_path / "run")


@pytest.fixture
def small_disk(tmp_path):
  """An 8 MB tmpfs (needs root, as in CI); skipped where mounting is not allowed."""
  mount = tmp_path / "disk"
  mount.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_disk_full_while_saving_is_clear_and_keeps_the_last_checkpoint(tiny_data, small_disk):
  workdir = small_disk / "run"
  train.train(tiny_config(tiny_data, steps=2), workdir)
  stat = os.statvfs(small_disk)
  with open(small_disk / "filler", "wb") as f:
    f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 20_000))
  with pytest.raises(OSError, match=r"no space left on the device of .*run.*step 2 in .*checkpoints is intact"):
    train.train(tiny_config(tiny_data, steps=4), workdir)
  (small_disk / "filler").unlink()
  assert checkpoints.load_params(workdir).step == 2  # the previous checkpoint restores
  assert train.train(tiny_config(tiny_data, steps=4), workdir)["step"] == 4  # and the run resumes once there is room


@pytest.mark.slow
def test_disk_full_while_writing_samples_names_the_file_and_leaves_no_partial_file(small_disk):
  from argmax_music import sample

  stat = os.statvfs(small_disk)
  with open(small_disk / "filler", "wb") as f:
    f.write(b"\0" * (stat.f_bavail * stat.f_frsize - 100_000))
  waveforms = np.random.default_rng(0).integers(0, 256, (4, 16000))
  with pytest.raises(OSError, match=r"out/sample_\d\.(wav|png): No space left on device"):
    sample.write_outputs(small_disk / "out", waveforms, {}, {"mode": "generate"})
  written = sorted(p.name for p in (small_disk / "out").iterdir())
  assert written and not [n for n in written if n.endswith(".tmp")]
  for name in written:
    if name.endswith(".wav"):
      assert len(sf.read(small_disk / "out" / name)[0]) == 16000  # what was written is whole
