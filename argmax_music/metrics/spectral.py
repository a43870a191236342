"""Spectral figures of a reconstruction against its original: multi-resolution STFT and log-mel distances, and how
well its onset envelope follows the original's."""

from __future__ import annotations

import numpy as np

from argmax_music import audio

FFT_SIZES = (256, 512, 1024, 2048)


def magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
  """|STFT| (frames, n_fft // 2 + 1) with a Hann window; short signals are zero-padded to one frame."""
  return np.abs(np.fft.rfft(audio.stft_frames(x, n_fft, hop), axis=-1))


def stft_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
  """Mean over FFT sizes 256..2048 (hop n/4) of spectral convergence plus mean |log-magnitude difference|.

  0 for identical signals; the two terms are those of the multi-resolution STFT loss of Parallel WaveGAN.
  """
  n = min(len(reference), len(estimate))
  total = 0.0
  for n_fft in FFT_SIZES:
    ref, est = magnitude(reference[:n], n_fft, n_fft // 4), magnitude(estimate[:n], n_fft, n_fft // 4)
    convergence = np.linalg.norm(ref - est) / max(np.linalg.norm(ref), 1e-8)
    log_distance = np.mean(np.abs(np.log(np.maximum(ref, 1e-5)) - np.log(np.maximum(est, 1e-5))))
    total += convergence + log_distance
  return float(total / len(FFT_SIZES))


def floored_log_mels(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
  """Both log-mel spectrograms (n_mels, frames; dB) over their common length, floored 80 dB below the reference's
  peak."""
  n = min(len(reference), len(estimate))
  ref = audio.log_mel_spectrogram(reference[:n], sample_rate)
  est = audio.log_mel_spectrogram(estimate[:n], sample_rate)
  floor = ref.max() - audio.DYNAMIC_RANGE_DB
  return np.maximum(ref, floor), np.maximum(est, floor)


def log_mel_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
  """Mean |difference| in dB between the log-mel spectrograms, both floored 80 dB below the reference's peak."""
  ref, est = floored_log_mels(reference, estimate, sample_rate)
  return float(np.mean(np.abs(ref - est)))


def onset_envelope(log_mel: np.ndarray) -> np.ndarray:
  """Spectral flux of a log-mel spectrogram (n_mels, frames; 16 ms a frame at 16 kHz): per frame, the summed rise in
  dB over the frame before."""
  return np.maximum(np.diff(log_mel, axis=1), 0.0).sum(axis=0)


def onset_envelope_correlation(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
  """Pearson correlation of the two onset envelopes (1: attacks where the original has them, as strong relative to
  each other; about 0 for unrelated audio), each band floored as `floored_log_mels` does; nan where either envelope
  is constant (silence)."""
  a, b = map(onset_envelope, floored_log_mels(reference, estimate, sample_rate))
  if a.std() == 0 or b.std() == 0:
    return float("nan")
  return float(np.corrcoef(a, b)[0, 1])
