"""A dependency-free progress line with rate and ETA, for long loops (rendering, preparing, sampling)."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
  """Seconds as h:mm:ss (or m:ss)."""
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
  """Prints `label [#####-----] done/total  rate unit/s  ETA` to stderr, at most a few times a second."""

  def __init__(self, total: int, label: str = "", unit: str = "it", stream=None, min_interval: float = 0.5):
    self.total, self.label, self.unit = total, label, unit
    self.stream = stream or sys.stderr
    self.min_interval = min_interval
    self.done = 0
    self.start = self._last = time.monotonic()

  def update(self, n: int = 1, note: str = "") -> None:
    self.done += n
    now = time.monotonic()
    if now - self._last >= self.min_interval or self.done >= self.total:
      self._last = now
      self._print(now, note)

  def _print(self, now: float, note: str) -> None:
    elapsed = max(now - self.start, 1e-9)
    rate = self.done / elapsed
    frac = self.done / self.total if self.total else 1.0
    bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
    eta = (self.total - self.done) / rate if rate > 0 else float("inf")
    eta_text = format_seconds(eta) if eta != float("inf") else "?"
    end = "\n" if self.done >= self.total else "\r"
    self.stream.write(f"{self.label} [{bar}] {self.done}/{self.total} {rate:.3g} {self.unit}/s "
                      f"ETA {eta_text} {note}".rstrip() + end)
    self.stream.flush()
