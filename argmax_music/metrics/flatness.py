"""Spectral flatness in dB: near 0 dB for white noise, far below for tonal music."""

from __future__ import annotations

import numpy as np

from argmax_music.metrics import spectral

N_FFT = 1024
HOP = 256
SILENT_DB = -60.0  # frames this far below the signal's loudest frame are left out


def spectral_flatness_db(x: np.ndarray) -> float:
  """Mean over non-silent frames of 10 log10(geometric / arithmetic mean of the power spectrum).

  White noise gives about -2.5 dB (the ratio for exponentially distributed power); a signal that is
  silent throughout gives NaN.
  """
  power = spectral.magnitude(x, N_FFT, HOP) ** 2 + 1e-20
  energy = power.mean(axis=1)
  loud = energy > energy.max() * 10 ** (SILENT_DB / 10)
  if energy.max() <= 1e-18 or not loud.any():
    return float("nan")
  power = power[loud]
  ratio = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
  return float(np.mean(10 * np.log10(ratio)))
