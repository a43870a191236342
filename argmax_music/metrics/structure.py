"""Long-range structure: does a piece end in the key it began in? The pitch-class profiles of its first and last
seconds, correlated. Numpy only; notes are [onset_s, offset_s, pitch] rows (a transcription's or a score's)."""

from __future__ import annotations

import numpy as np

WINDOW_S = 5.0  # Seconds at each end of a piece.


def pitch_class_profile(notes: np.ndarray, start: float, end: float) -> np.ndarray:
  """Seconds each of the 12 pitch classes sounds within [start, end)."""
  notes = np.asarray(notes, np.float64).reshape(-1, 3)
  sounding = np.maximum(np.minimum(notes[:, 1], end) - np.maximum(notes[:, 0], start), 0.0)
  return np.bincount(notes[:, 2].astype(np.int64) % 12, weights=sounding, minlength=12)


def profile_correlation(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson correlation of two pitch-class profiles; nan when either is flat (silence, or every class alike)."""
  a, b = a - a.mean(), b - b.mean()
  norm = np.linalg.norm(a) * np.linalg.norm(b)
  return float(a @ b / norm) if norm > 0 else float("nan")


def ends_correlation(first: np.ndarray, last: np.ndarray, seconds: float, window: float = WINDOW_S) -> float:
  """The correlation of the profile of `first`'s opening `window` seconds with that of `last`'s closing ones, both
  pieces `seconds` long: a piece with itself (the structure figure), or two different pieces (its baseline)."""
  if seconds < 2 * window:
    raise ValueError(f"a {seconds:g} s piece has no separate first and last {window:g} s")
  return profile_correlation(
    pitch_class_profile(first, 0.0, window), pitch_class_profile(last, seconds - window, seconds)
  )
