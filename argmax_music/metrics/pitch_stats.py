"""Statistics of transcribed notes: density, pitched frames, polyphony, pitch-class and duration histograms."""

from __future__ import annotations

import numpy as np

GRID_HZ = 100.0  # time grid for polyphony
DURATION_EDGES = (0.0, 0.15, 0.3, 0.6, 1.2, 2.4, np.inf)  # seconds


def notes_per_second(notes: np.ndarray, seconds: float) -> float:
  return len(notes) / seconds if seconds > 0 else 0.0


def pitched_fraction(frames: np.ndarray, threshold: float) -> float:
  """Fraction of frames where some pitch's activation exceeds `threshold`."""
  return float(np.mean(frames.max(axis=1) > threshold)) if len(frames) else 0.0


def polyphony(notes: np.ndarray, seconds: float) -> float:
  """Mean number of notes sounding at once, over the moments when at least one sounds (0 without notes)."""
  steps = int(np.ceil(seconds * GRID_HZ))
  if not len(notes) or steps <= 0:
    return 0.0
  count = np.zeros(steps + 1)
  for onset, offset, _ in notes:
    count[int(onset * GRID_HZ) : max(int(offset * GRID_HZ), int(onset * GRID_HZ) + 1)] += 1
  sounding = count[count > 0]
  return float(sounding.mean()) if len(sounding) else 0.0


def pitch_class_counts(notes: np.ndarray) -> np.ndarray:
  """Number of notes on each pitch class (C = 0)."""
  return np.bincount(np.round(notes[:, 2]).astype(int) % 12, minlength=12).astype(np.float64)


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
  """Share of notes on each pitch class (C = 0); all zeros without notes."""
  counts = pitch_class_counts(notes)
  return counts / max(counts.sum(), 1.0)


def duration_histogram(notes: np.ndarray) -> np.ndarray:
  """Share of notes in each duration bin of DURATION_EDGES; all zeros without notes."""
  counts, _ = np.histogram(notes[:, 1] - notes[:, 0], bins=np.asarray(DURATION_EDGES))
  return counts.astype(np.float64) / max(counts.sum(), 1)


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
  """Total-variation distance (0 = same, 1 = disjoint) of two histograms; 1 when either holds no notes."""
  if p.sum() == 0 or q.sum() == 0:
    return 1.0
  return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())
