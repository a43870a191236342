"""Frame-wise chroma (pitch-class energy) and the cosine similarity of two signals' chroma."""

from __future__ import annotations

import numpy as np

from argmax_music.metrics import spectral

N_FFT = 4096  # 3.9 Hz bins at 16 kHz: a semitone apart from about 65 Hz (C2) up
HOP = 1024
LOWEST_HZ = 60.0
SILENT_DB = -50.0  # frames this far below the loudest frame of the reference are left out


def chroma(x: np.ndarray, sample_rate: int) -> np.ndarray:
  """(frames, 12) power per pitch class (C = 0) from an STFT, bins from 60 Hz to 5 kHz."""
  power = spectral.magnitude(x, N_FFT, HOP) ** 2
  freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
  keep = (freqs >= LOWEST_HZ) & (freqs <= min(5000.0, sample_rate / 2))
  pitch_class = np.round(12 * np.log2(freqs[keep] / 440.0) + 69).astype(int) % 12
  return power[:, keep] @ np.eye(12)[pitch_class]


def chroma_cosine(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
  """Mean over the reference's non-silent frames of the cosine similarity of the two chroma vectors (1 = same)."""
  n = min(len(reference), len(estimate))
  ref, est = chroma(reference[:n], sample_rate), chroma(estimate[:n], sample_rate)
  energy = ref.sum(axis=1)
  loud = energy > energy.max() * 10 ** (SILENT_DB / 10) if energy.max() > 0 else np.zeros(len(ref), bool)
  if not loud.any():
    return float("nan")
  ref, est = ref[loud], est[loud]
  cosine = np.sum(ref * est, axis=1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(est, axis=1), 1e-20)
  return float(np.mean(cosine))
