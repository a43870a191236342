"""A user's own folder and a user's mistakes: a validation split made on its own, errors in one line."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, write_tone

from argmax_music import audio, cli, train
from argmax_music.data import dataset, prepare
from configs import tiny


def run_tool(*args: str) -> subprocess.CompletedProcess:
  """A tool as a user runs it: its own process, JAX left to find its platform."""
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_plain_folder_gets_validation_split(tmp_path):
  folder = tmp_path / "mine"
  write_tone(folder / "first.flac", 3.0, 220, rate=44100, channels=2)
  write_tone(folder / "second.flac", 2.5, 330, rate=44100, channels=2)
  write_tone(folder / "clip.wav", 2.0, 440, rate=16000)
  out = tmp_path / "prepared"
  done = run_tool("argmax_music.data.prepare", f"--input={folder}", f"--output={out}", "--workers=1")
  assert done.returncode == 0, done.stderr
  assert "validation     3 files" in done.stdout and "held out" in done.stdout, done.stdout

  data = dataset.PreparedDataset(out)
  train_entries = {e["source"]: e for e in data.entries("train")}
  assert sorted(train_entries) == ["clip.wav", "first.flac", "second.flac"]
  for entry, tail in zip(data.entries("validation"), data.arrays("validation"), strict=True):
    whole = audio.mu_law_encode(audio.load_audio(folder / entry["source"], 16000))
    head = np.load(out / train_entries[entry["source"]]["array"])
    # Training stops where the held-out tail starts: together they are the file, with no overlap.
    assert len(head) == entry["start"] and len(head) + len(tail) == len(whole)
    np.testing.assert_array_equal(head, whole[: entry["start"]])
    np.testing.assert_array_equal(tail, whole[entry["start"] :])
    assert len(tail) >= 16000  # at least --min_seconds

  config = tiny.get_config("ada")
  config.data.dir = str(out)
  config.train.steps = config.train.eval_every
  result = train.train(config, tmp_path / "run")
  assert math.isfinite(result["eval"]["nll_bits"])


def test_enough_files_validate_on_whole_files(tone_folder, tmp_path):
  manifest = prepare.prepare(tone_folder, tmp_path / "out", validation_fraction=0.01, test_fraction=0.0)
  sources = {s: [e["source"] for e in v] for s, v in manifest["splits"].items()}
  assert len(sources["validation"]) == 1 and len(sources["train"]) == 11  # the hash alone picks none at 1%
  assert all("start" not in e for e in manifest["splits"]["validation"])
  assert manifest["made_by"]["validation"].startswith("whole files")


def check_one_line_error(done: subprocess.CompletedProcess, *names: str) -> str:
  output = done.stdout + done.stderr
  assert done.returncode != 0
  assert "Traceback" not in output, output
  errors = [line for line in output.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, output
  for name in names:
    assert name in errors[0], errors[0]
  return output


@pytest.mark.slow
def test_user_errors_without_traceback(tmp_path, tiny_stack):
  base = ["argmax_music.train", "--config=configs/tiny.py", f"--workdir={tmp_path / 'run'}"]
  check_one_line_error(
    run_tool(*base, f"--config.data.dir={tmp_path / 'missing'}"), "data.dir", str(tmp_path / "missing")
  )
  check_one_line_error(run_tool(*base, "--config.data.dri=data"), "--config.data.dri", "'dri'")

  folder = tmp_path / "all_train"
  for i, name in enumerate(("a.wav", "b.wav")):
    write_tone(folder / name, 2.0, 220 * (i + 1))
  (folder / "metadata.csv").write_text("split,audio_filename\ntrain,a.wav\ntrain,b.wav\n")
  prepare.prepare(folder, tmp_path / "prepared")
  empty = run_tool(*base, f"--config.data.dir={tmp_path / 'prepared'}")
  output = check_one_line_error(empty, str(tmp_path / "prepared"), "validation split is empty")
  # The logs stay quiet: no backend probe, no Orbax chatter.
  assert "Unable to initialize backend" not in output and "orbax" not in output.lower(), output
  # The traceback is one flag away.
  verbose = run_tool(*base, f"--config.data.dir={tmp_path / 'prepared'}", "--verbosity=1")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr

  # An audio file to read that is missing or not audio: one line naming it, in each mode that reads one.
  not_audio = tmp_path / "notes.wav"
  not_audio.write_text("not audio")
  sample = ["argmax_music.sample", f"--workdir={tiny_stack}", f"--out={tmp_path / 'samples'}", "--seconds=0.5"]
  for flags, path, reason in [
    (["--mode=reconstruct", f"--input={tmp_path / 'missing.wav'}"], tmp_path / "missing.wav", "no such file"),
    (["--mode=reconstruct", f"--input={not_audio}"], not_audio, "cannot read audio"),
    (["--mode=continue", f"--prompt={not_audio}"], not_audio, "cannot read audio"),
  ]:
    check_one_line_error(run_tool(*sample, *flags), str(path), reason)


def test_tools_keep_compiled_programs_for_the_next_process(tmp_path):
  """`cli.run` points JAX's persistent compilation cache at the project's cache folder, bounded, or where and as
  JAX's variables say; a bounded run still adds programs to a folder that an unbounded run wrote first."""
  script = (
    "import sys; from argmax_music import cli; cli.keep_compiled_programs(); import jax, jax.numpy as jnp; "
    "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0); "
    "jax.jit(lambda x: x @ x.T)(jnp.ones((int(sys.argv[1]), 8))).block_until_ready(); "
    "print(jax.config.jax_compilation_cache_max_size)"
  )
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  env["ARGMAX_MUSIC_CACHE"] = str(tmp_path / "ours")

  def run(rows: int = 8) -> int:
    done = subprocess.run(
      [sys.executable, "-c", script, str(rows)], cwd=REPO, env=env, check=True, timeout=120, capture_output=True
    )
    assert b"Error writing persistent compilation cache" not in done.stderr, done.stderr.decode()[-2000:]
    return int(done.stdout.split()[-1])

  programs = lambda folder: sorted(p.name for p in folder.glob("jit__lambda*-cache"))
  assert run() == cli.COMPILED_PROGRAMS_MAX_BYTES
  assert len(programs(tmp_path / "ours" / "jax")) == 1
  env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "theirs")
  env["JAX_COMPILATION_CACHE_MAX_SIZE"] = "-1"
  assert run() == -1
  assert len(programs(tmp_path / "theirs")) == 1 and not list((tmp_path / "theirs").glob("*-atime"))
  del env["JAX_COMPILATION_CACHE_MAX_SIZE"]
  assert run(rows=16) == cli.COMPILED_PROGRAMS_MAX_BYTES
  assert len(programs(tmp_path / "theirs")) == 2
