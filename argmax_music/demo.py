"""The demo: the whole chain on the embedded piano corpus, each stage run by its real command.

  python -m argmax_music.demo [--pieces=40] [--root=runs/demo] [--steps=...]

render corpus -> prepare -> train level 1 (AMAE) -> encode codes -> train the prior
-> reconstruct a validation clip and generate new pieces (WAV, spectrograms, index.html). Every stage resumes or
skips finished work, so running the demo again continues where it stopped.
"""

from __future__ import annotations

import csv
import shlex
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS


def run(*args: str) -> None:
  """Print a stage's command, then run it (failing the demo if it fails)."""
  cmd = [sys.executable, "-m", *args]
  print(f"\n$ python -m {shlex.join(args)}", flush=True)
  start = time.monotonic()
  subprocess.run(cmd, check=True)
  print(f"  ({time.monotonic() - start:.0f} s)", flush=True)


def first_validation_file(corpus: Path) -> Path:
  """The corpus's first validation piece (its metadata.csv gives the splits)."""
  with open(corpus / "metadata.csv", newline="") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "validation"]
  if not rows:
    raise ValueError(f"{corpus}: no validation piece; render more pieces (--pieces)")
  return corpus / rows[0]["audio_filename"]


def main(argv):
  del argv
  start = time.monotonic()
  data, root = Path(FLAGS.data), Path(FLAGS.root)
  steps = [] if FLAGS.steps is None else [f"--config.train.steps={FLAGS.steps}"]
  run("argmax_music.data.corpus", f"--out={data / 'piano'}", f"--pieces={FLAGS.pieces}")
  run("argmax_music.data.prepare", f"--input={data / 'piano'}", f"--output={data / 'piano_prepared'}",
      "--min_seconds=1")
  run("argmax_music.train", "--config=configs/cpu_demo.py", f"--config.data.dir={data / 'piano_prepared'}",
      f"--workdir={root / 'level1'}", *steps)
  run("argmax_music.encode", f"--workdir={root / 'level1'}", f"--output={root / 'codes'}")
  run("argmax_music.train", "--config=configs/cpu_demo.py:prior", f"--config.data.dir={root / 'codes'}",
      f"--workdir={root / 'prior'}", *steps)
  samples = root / "samples"
  run("argmax_music.sample", f"--workdir={root}", "--mode=reconstruct",
      f"--input={first_validation_file(data / 'piano')}", f"--seconds={FLAGS.seconds}",
      f"--out={samples / 'reconstruct'}")
  run("argmax_music.sample", f"--workdir={root}", "--mode=generate", f"--seconds={FLAGS.seconds}",
      f"--num={FLAGS.num}", f"--out={samples / 'generate'}")
  print(f"\ndone in {(time.monotonic() - start) / 60:.1f} min. Results:")
  print(f"  level 1 (checkpoints, TensorBoard events): {root / 'level1'}")
  print(f"  its codes: {root / 'codes'}   the prior: {root / 'prior'}")
  print(f"  listen: {samples / 'reconstruct' / 'index.html'} (a validation clip, encoded and decoded)")
  print(f"          {samples / 'generate' / 'index.html'} (new music: prior -> codes -> decoder)")
  print(f"  curves, audio and spectrograms: tensorboard --logdir={root}")


if __name__ == "__main__":
  flags.DEFINE_integer("pieces", 40, "Corpus entries to render.")
  flags.DEFINE_string("data", "data", "Where the corpus and the prepared dataset go.")
  flags.DEFINE_string("root", "runs/demo", "Where the runs and results go.")
  flags.DEFINE_integer("steps", None, "Override the training steps of both stages (default: the config's).")
  flags.DEFINE_float("seconds", 4.0, "Seconds of audio to reconstruct and to generate.")
  flags.DEFINE_integer("num", 2, "Pieces to generate.")
  app.run(main)
