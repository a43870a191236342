"""The demo: the whole chain on the embedded piano corpus, each stage run by its real command.

  python -m argmax_music.demo [--pieces=40] [--root=runs/demo] [--size=demo|long] [--steps=...] [--temperature=0]
      [--verbosity=0]

render corpus -> prepare -> train level 1 (VQ-VAE) -> encode codes -> train the prior
-> reconstruct a validation clip and generate new pieces (WAV, spectrograms, index.html) -> sample the
shipped two-level model (pretrained/piano; its model card is pretrained/piano/README.md) -> score
reconstructions of validation clips against their MIDI (ROOT/eval/metrics.json). Every stage resumes or
skips finished work, so running the demo again continues where it stopped.

The terminal shows one line per stage (its command), a progress bar with ETA while it runs,
the warnings and errors of the stage, and a closing summary; the stage's whole output goes to
ROOT/logs/STAGE.log. With --verbosity (absl's flag) every stage's output is shown as it comes.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import flags
from tqdm import tqdm

from argmax_music import cli, listening_page

FLAGS = flags.FLAGS
# 'N/M' in a line that reports a rate or an ETA: a progress bar (tqdm's or ours) or a training step line.
PROGRESS = re.compile(r"(?<![\w/.])(\d+)/(\d+)(?![\w/])")
NOTICE = re.compile(r"^(warning|error|[WEF]\d{4} |.*\b\w*(Warning|Error)\b:)")
TAIL_LINES = 20


class StageFailed(Exception):
  """A stage exited non-zero; its log has the details."""


def is_progress(line: str) -> tuple[int, int] | None:
  """(done, total) when the line is a progress report, else None."""
  match = PROGRESS.search(line)
  if match and ("ETA" in line or "/s" in line) and int(match.group(2)) > 0:
    return int(match.group(1)), int(match.group(2))
  return None


def follow(process: subprocess.Popen, label: str, log) -> None:
  """Copy the stage's output to `log`; show its progress as one bar and its warnings and errors as lines."""
  with tqdm(
    total=None,
    desc=f"  {label}",
    unit="",
    leave=False,
    dynamic_ncols=True,
    bar_format="{desc}: {percentage:3.0f}%|{bar:30}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
  ) as bar:
    for line in process.stdout:  # text mode: '\r' (a redrawn bar) ends a line too
      log.write(line if line.endswith("\n") else line + "\n")
      line = line.rstrip()
      progress = is_progress(line)
      if progress:
        done, total = progress
        if total != bar.total:
          bar.reset(total=total)
        bar.update(done - bar.n)
      elif NOTICE.match(line):
        bar.write(f"  {line}")


def run(*args: str, label: str | None = None, log_dir: Path | None = None) -> float:
  """Print a stage's command, run it and return its seconds; a failing stage raises StageFailed.

  By default (no --verbosity) its output goes to LOG_DIR/LABEL.log (under the system's temporary
  folder without a LOG_DIR) and the terminal shows its progress and notices only.
  """
  label = label or args[0].rsplit(".", 1)[-1]
  verbose = cli.verbosity_asked(sys.argv) is not None
  command = [sys.executable, "-m", *args] + (
    [a for a in sys.argv[1:] if a.startswith("--verbosity")] if verbose else []
  )
  print(f"{label:<12} $ python -m {shlex.join(args)}", flush=True)
  start = time.monotonic()
  if verbose:
    code = subprocess.run(command).returncode
    log_path = None
  else:
    log_dir = log_dir or Path(tempfile.gettempdir()) / "argmax_music_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    with (
      open(log_path, "w", buffering=1) as log,
      subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
      ) as process,
    ):
      follow(process, label, log)
    code = process.returncode
  seconds = time.monotonic() - start
  if code:
    if log_path:
      lines = log_path.read_text().splitlines()[-TAIL_LINES:]
      print("\n".join(f"  | {line}" for line in lines), file=sys.stderr)
    raise StageFailed(
      f"stage {label!r} failed (exit {code}) after {seconds:.0f} s" + (f"; its output: {log_path}" if log_path else "")
    )
  print(f"{'':<12}   done in {format_minutes(seconds)}", flush=True)
  return seconds


def format_minutes(seconds: float) -> str:
  return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def first_validation_file(corpus: Path) -> Path:
  """The corpus's first validation piece (its metadata.csv gives the splits)."""
  with open(corpus / "metadata.csv", newline="") as f:
    rows = [r for r in csv.DictReader(f) if r["split"] == "validation"]
  if not rows:
    raise StageFailed(f"{corpus}: no validation piece; render more pieces (--pieces)")
  return corpus / rows[0]["audio_filename"]


def read_json(path: Path) -> dict:
  return json.loads(path.read_text()) if path.exists() else {}


def figure_lines(root: Path, samples: Path) -> list[str]:
  """The demo's figures: onset note F1 of the reconstructed validation clips against their score (from
  ROOT/eval/metrics.json), notes/s and flatness of the generated pieces beside the training audio's and
  white noise's (from the generate page); none where they were not computed."""
  lines = []
  reconstruction = read_json(root / "eval" / "metrics.json").get("reconstruction")
  if reconstruction:
    mean = reconstruction["summary"]
    lines.append(
      f"  reconstructed validation clips: onset note F1 {mean['onset_f1']:.2f} against the "
      f"{mean['vs']} (mean of {len(reconstruction['clips'])} clips of {reconstruction['clips'][0]['seconds']:g} s"
      + (
        f"; the transcriber on the originals: {mean['original_onset_f1']:.2f})" if "original_onset_f1" in mean else ")"
      )
    )
  generated = read_json(samples / "generate" / listening_page.PAGE_DATA).get("summary", {})
  if "training_notes_per_s" in generated:
    g = generated
    lines.append(
      f"  generated pieces: {g['notes_per_s']:.2f} notes/s, flatness {g['flatness_db']:.1f} dB "
      f"(training audio {g['training_notes_per_s']:.2f} notes/s, {g['training_flatness_db']:.1f} dB; "
      f"white noise {g['noise_notes_per_s']:.2f} notes/s, {g['noise_flatness_db']:.1f} dB)"
    )
  return ["figures:", *lines] if lines else []


def summary(root: Path, samples: Path, times: dict[str, float], total: float) -> str:
  """The closing lines: time per stage, where to listen and look, and the pages' figures."""
  split = ", ".join(f"{k} {format_minutes(v)}" for k, v in times.items())
  lines = [f"\ndone in {format_minutes(total)} ({split})", "listen:"]
  for mode, what in (
    ("reconstruct", "a validation clip beside its reconstruction"),
    ("generate", "new music: prior -> codes -> decoder"),
    ("pretrained", "new music from the shipped two-level model (pretrained/piano)"),
  ):
    lines.append(f"  {samples / mode / 'index.html'}  ({what})")
  lines += figure_lines(root, samples)
  lines += [
    f"runs: {root / 'level1'} (level 1), {root / 'codes'} (its codes), {root / 'prior'} (the prior)",
    f"each stage's full output: {root / 'logs'}",
    f"curves, audio and spectrograms: .venv/bin/tensorboard --logdir={root}",
  ]
  return "\n".join(lines)


def main(argv):
  del argv
  start = time.monotonic()
  data, root = Path(FLAGS.data), Path(FLAGS.root)
  steps = [] if FLAGS.steps is None else [f"--config.train.steps={FLAGS.steps}"]
  size = "" if FLAGS.size == "demo" else f"size={FLAGS.size}"
  samples = root / "samples"
  stage = functools.partial(run, log_dir=root / "logs")
  times = {}
  try:
    times["corpus"] = stage("argmax_music.data.corpus", f"--out={data / 'piano'}", f"--pieces={FLAGS.pieces}")
    times["prepare"] = stage(
      "argmax_music.data.prepare", f"--input={data / 'piano'}", f"--output={data / 'piano_prepared'}", "--min_seconds=1"
    )
    times["level 1"] = stage(
      "argmax_music.train",
      f"--config=configs/cpu_demo.py{':' + size if size else ''}",
      f"--config.data.dir={data / 'piano_prepared'}",
      f"--workdir={root / 'level1'}",
      *steps,
      label="level1",
    )
    times["encode"] = stage("argmax_music.encode", f"--workdir={root / 'level1'}", f"--output={root / 'codes'}")
    times["prior"] = stage(
      "argmax_music.train",
      f"--config=configs/cpu_demo.py:prior{',' + size if size else ''}",
      f"--config.data.dir={root / 'codes'}",
      f"--workdir={root / 'prior'}",
      *steps,
      label="prior",
    )
    times["reconstruct"] = stage(
      "argmax_music.sample",
      f"--workdir={root}",
      "--mode=reconstruct",
      f"--input={first_validation_file(data / 'piano')}",
      f"--seconds={FLAGS.seconds}",
      f"--temperature={FLAGS.temperature}",
      f"--out={samples / 'reconstruct'}",
      label="reconstruct",
    )
    times["generate"] = stage(
      "argmax_music.sample",
      f"--workdir={root}",
      "--mode=generate",
      f"--seconds={FLAGS.seconds}",
      f"--num={FLAGS.num}",
      f"--temperature=1.0,{FLAGS.temperature}",
      f"--out={samples / 'generate'}",
      label="generate",
    )
    times["pretrained"] = stage(
      "argmax_music.sample",
      "--pretrained=piano",
      "--mode=generate",
      f"--seconds={FLAGS.pretrained_seconds}",
      f"--num={FLAGS.pretrained_num}",
      f"--out={samples / 'pretrained'}",
      label="pretrained",
    )
    times["evaluate"] = stage(
      "argmax_music.evaluate",
      f"--workdir={root}",
      f"--clips={FLAGS.eval_clips}",
      f"--seconds={FLAGS.seconds}",
      f"--temperature={FLAGS.temperature}",
      "--generate=0",
      label="evaluate",
    )
  except StageFailed as e:
    cli.fail(str(e))
  print(summary(root, samples, times, time.monotonic() - start))


if __name__ == "__main__":
  flags.DEFINE_integer("pieces", 40, "Corpus entries to render.")
  flags.DEFINE_string("data", "data", "Where the corpus and the prepared dataset go.")
  flags.DEFINE_string("root", "runs/demo", "Where the runs and results go.")
  flags.DEFINE_enum("size", "demo", ["demo", "long"], "configs/cpu_demo.py's size: 'long' trains 10x longer.")
  flags.DEFINE_integer("steps", None, "Override the training steps of both stages (default: the config's).")
  flags.DEFINE_float("seconds", 4.0, "Seconds of audio to reconstruct and to generate.")
  flags.DEFINE_integer("num", 4, "Pieces to generate.")
  flags.DEFINE_float("pretrained_seconds", 20.0, "Seconds of each piece sampled from the shipped model.")
  flags.DEFINE_integer("pretrained_num", 2, "Pieces sampled from the shipped model.")
  flags.DEFINE_integer("eval_clips", 3, "Validation clips to reconstruct and score against their MIDI.")
  flags.DEFINE_float(
    "temperature",
    0.0,
    "The decoder's sampling temperature, 0 = argmax (the prior samples at 1.0). Reconstructions' onset note F1 "
    "with the demo's level 1 at K = 64: 0.61 at 0, 0.57 at 0.1, 0.60 at 0.2, 0.54 at 0.4, 0.51 at 1.0.",
  )
  cli.run(main)
