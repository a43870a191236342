"""The demo: the whole chain on the embedded piano corpus, each stage run by its real command.

  python -m argmax_music.demo [--pieces=40] [--root=runs/demo] [--steps=...]

render corpus -> prepare -> train level 1 (AMAE) -> encode codes -> train the prior
-> reconstruct validation clips (WAV + spectrogram PNG). Every stage resumes or
skips finished work, so running the demo again continues where it stopped.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def run(*args: str) -> None:
  """Print a stage's command, then run it (failing the demo if it fails)."""
  cmd = [sys.executable, "-m", *args]
  print(f"\n$ python -m {shlex.join(args)}", flush=True)
  start = time.monotonic()
  subprocess.run(cmd, check=True)
  print(f"  ({time.monotonic() - start:.0f} s)", flush=True)


def reconstruct_clips(workdir: Path, out: Path, clips: int, seconds: float) -> list[Path]:
  """Encode then decode the first validation clips; write WAV and spectrogram PNGs."""
  import jax

  from argmax_music import audio, train
  from argmax_music.data import dataset, pipeline

  config, task, params, model_state, _ = train.load_trained(workdir)
  data = dataset.PreparedDataset(config.data.dir)
  length = int(seconds * data.rate) // task.model.hop * task.model.hop
  out.mkdir(parents=True, exist_ok=True)
  written = []
  for i, clip in enumerate(pipeline.eval_crops(data, length, max_crops=clips)):
    clip = np.asarray(clip, np.int32)
    recon = train.reconstruct_clip(task, params, model_state, clip, jax.random.key(i))
    original, decoded = audio.mu_law_decode(clip), audio.mu_law_decode(recon)
    audio.save_wav(out / f"clip{i}_original.wav", original, data.manifest["sample_rate"])
    audio.save_wav(out / f"clip{i}_reconstruction.wav", decoded, data.manifest["sample_rate"])
    audio.save_spectrogram_png(out / f"clip{i}.png", {"original": original, "reconstruction": decoded})
    written += [out / f"clip{i}_reconstruction.wav", out / f"clip{i}.png"]
  return written


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
  print("\nreconstructing validation clips ...", flush=True)
  written = reconstruct_clips(root / "level1", root / "reconstructions", FLAGS.clips, FLAGS.clip_seconds)
  print(f"\ndone in {(time.monotonic() - start) / 60:.1f} min. Results:")
  print(f"  level 1 (checkpoints, TensorBoard events): {root / 'level1'}")
  print(f"  its codes: {root / 'codes'}   the prior: {root / 'prior'}")
  print(f"  reconstructions (WAV + PNG): {root / 'reconstructions'} ({len(written)} files)")
  print(f"  tensorboard --logdir={root}")


if __name__ == "__main__":
  flags.DEFINE_integer("pieces", 40, "Corpus entries to render.")
  flags.DEFINE_string("data", "data", "Where the corpus and the prepared dataset go.")
  flags.DEFINE_string("root", "runs/demo", "Where the runs and results go.")
  flags.DEFINE_integer("steps", None, "Override the training steps of both stages (default: the config's).")
  flags.DEFINE_integer("clips", 2, "Validation clips to reconstruct.")
  flags.DEFINE_float("clip_seconds", 2.0, "Length of each reconstructed clip.")
  app.run(main)
