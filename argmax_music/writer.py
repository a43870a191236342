"""Metrics and progress of a training run: TensorBoard events, `metrics.jsonl`, and the log line's steps/s and ETA.

clu's metric writers would be the usual choice, but they import TensorFlow at import
time; this is the small part of them the trainer needs, on tensorboardX.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


def format_seconds(seconds: float) -> str:
  """Seconds as h:mm:ss (or m:ss)."""
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class MetricWriter:
  """Scalars to TensorBoard (`workdir/tb`) and to `workdir/metrics.jsonl`; audio and spectrograms to TensorBoard.

  Only process 0 writes; on the others every method does nothing.
  """

  def __init__(self, workdir: Path, sample_rate: int):
    self.sample_rate = sample_rate
    self.tb = self.jsonl = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter

      self.tb = SummaryWriter(str(Path(workdir) / "tb"))
      self.jsonl = open(Path(workdir) / METRICS_FILE, "a")

  def scalars(self, step: int, values: dict, kind: str) -> None:
    if not self.tb:
      return
    values = {k: float(v) for k, v in values.items()}
    for k, v in values.items():
      self.tb.add_scalar(f"{kind}/{k}", v, step)
    self.jsonl.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
    self.jsonl.flush()

  def audio_and_spectrogram(self, step: int, original: np.ndarray, reconstruction: np.ndarray) -> None:
    if not self.tb:
      return
    from argmax_music import audio

    self.tb.add_audio("eval/original", original, step, sample_rate=self.sample_rate)
    self.tb.add_audio("eval/reconstruction", reconstruction, step, sample_rate=self.sample_rate)
    self.tb.add_figure(
      "eval/spectrogram",
      audio.spectrogram_figure({"input": original, "reconstruction": reconstruction}, self.sample_rate),
      step,
    )

  def close(self) -> None:
    if self.tb:
      self.tb.close()
      self.jsonl.close()


def read_metrics(workdir: str | Path, kind: str) -> dict[int, dict]:
  """The scalars of one kind ('train', 'eval', 'perf') by step, from workdir/metrics.jsonl.

  A step logged again after a resume keeps its last values; a line cut short by a kill is skipped.
  """
  by_step = {}
  path = Path(workdir) / METRICS_FILE
  for line in path.read_text().splitlines() if path.exists() else []:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if row.pop("kind") == kind:
      by_step[row.pop("step")] = row
  return dict(sorted(by_step.items()))


class ProgressReporter:
  """Steps/s since the last report and the ETA to `total` steps."""

  def __init__(self, total: int, start: int):
    self.total = total
    self.last_time, self.last_step = time.monotonic(), start

  def __call__(self, step: int) -> tuple[float, str]:
    """(steps per second since the previous call, ETA as h:mm:ss)."""
    now = time.monotonic()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_time, self.last_step = now, step
    return rate, format_seconds((self.total - step) / max(rate, 1e-9))
