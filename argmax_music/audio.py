"""Audio I/O and representation: load/downmix/resample, mu-law, WAV, spectrogram pictures."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from argmax_music.files import atomic_save_figure, atomic_write_bytes

MU_LAW_CLASSES = 256


class AudioError(ValueError):
  """An audio file that cannot be used; the message names the file."""


# ---------------------------------------------------------------------------
# Mu-law companding.
# ---------------------------------------------------------------------------


def mu_law_compress(x, mu: int = MU_LAW_CLASSES - 1):
  """Continuous mu-law companding of a signal in [-1, 1] (values beyond are clipped)."""
  x = np.clip(x, -1.0, 1.0)
  return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mu_law_expand(y, mu: int = MU_LAW_CLASSES - 1):
  """Inverse of `mu_law_compress`."""
  return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def mu_law_encode(x, classes: int = MU_LAW_CLASSES) -> np.ndarray:
  """Quantise a [-1, 1] signal to `classes` mu-law integers (uint8 for 256 classes)."""
  y = mu_law_compress(np.asarray(x, np.float64), classes - 1)
  q = np.floor((y + 1.0) / 2.0 * (classes - 1) + 0.5)
  return q.astype(np.uint8 if classes <= 256 else np.int32)


def mu_law_decode(q, classes: int = MU_LAW_CLASSES) -> np.ndarray:
  """Inverse of `mu_law_encode`: integers to a float32 signal in [-1, 1]."""
  y = np.asarray(q, np.float64) * 2.0 / (classes - 1) - 1.0
  return mu_law_expand(y, classes - 1).astype(np.float32)


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------


def to_mono(x: np.ndarray) -> np.ndarray:
  """Downmix a (frames, channels) or (frames,) array to mono by averaging channels."""
  return x.mean(axis=1) if x.ndim == 2 else x


def resample(x: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
  """Resample a mono signal with soxr (high quality)."""
  if rate == target_rate:
    return x
  return soxr.resample(x, rate, target_rate, quality="HQ").astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
  """Read any file libsndfile reads as a float32 mono signal at `sample_rate`.

  Documented conversions: channels are averaged, the rate is resampled with
  soxr, and samples beyond [-1, 1] (float files) are clipped. Raises AudioError,
  naming the file, for missing, unreadable, corrupt or empty files.
  """
  if not os.path.isfile(path):  # libsndfile would say only "System error".
    raise AudioError(f"{path}: no such file")
  try:
    x, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
  except Exception as e:  # libsndfile raises several types; all mean "unreadable".
    raise AudioError(f"{path}: cannot read audio ({type(e).__name__}: {e})") from e
  if x.shape[0] == 0:
    raise AudioError(f"{path}: file holds no samples")
  x = resample(to_mono(x), rate, sample_rate)
  if not np.all(np.isfinite(x)):
    raise AudioError(f"{path}: contains NaN or Inf samples")
  return np.clip(x, -1.0, 1.0).astype(np.float32)


def save_audio(path: str | os.PathLike, x: np.ndarray, sample_rate: int = 16000) -> None:
  """Write a float signal in [-1, 1] as 16-bit WAV or FLAC (by the suffix), atomically."""
  kind = {".wav": "WAV", ".flac": "FLAC"}.get(Path(path).suffix.lower())
  if kind is None:
    raise ValueError(f"{path}: write .wav or .flac")
  buffer = io.BytesIO()
  sf.write(buffer, np.clip(np.asarray(x, np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16", format=kind)
  atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------
# Pictures.
# ---------------------------------------------------------------------------


DYNAMIC_RANGE_DB = 80.0  # What a spectrogram picture and the log-mel distance show below the loudest bin.
FREQUENCY_TICKS_HZ = (100, 250, 500, 1000, 2000, 4000, 8000)


def stft_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
  """Hann-windowed frames (frames, n_fft) every `hop` samples; a signal shorter than a frame is zero-padded."""
  x = np.asarray(x, np.float32)
  if len(x) < n_fft:
    x = np.pad(x, (0, n_fft - len(x)))
  return np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft).astype(np.float32)


def hz_to_mel(hz):
  """The mel scale (O'Shaughnessy's formula)."""
  return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def log_mel_spectrogram(
  x: np.ndarray, sample_rate: int = 16000, n_fft: int = 1024, hop: int = 256, n_mels: int = 80
) -> np.ndarray:
  """Log-mel spectrogram (n_mels, frames) in dB, with a Hann window and a triangular mel bank."""
  power = np.abs(np.fft.rfft(stft_frames(x, n_fft, hop), axis=-1)) ** 2
  hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
  edges = hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
  freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
  lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  bank = np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
  return 10.0 * np.log10(np.maximum(power @ bank.T, 1e-10)).T


def spectrogram_figure(signals: dict[str, np.ndarray], sample_rate: int = 16000):
  """One log-mel panel per named signal, stacked on one time axis, one colour scale (dB), frequencies in Hz."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  specs = {name: log_mel_spectrogram(x, sample_rate) for name, x in signals.items()}
  top = max(float(s.max()) for s in specs.values())
  seconds = max(len(x) for x in signals.values()) / sample_rate
  fig, axes = plt.subplots(len(specs), 1, figsize=(9, 2.3 * len(specs)), squeeze=False, sharex=True)
  ticks = [hz for hz in FREQUENCY_TICKS_HZ if hz < sample_rate / 2]
  for ax, (name, spec) in zip(axes[:, 0], specs.items(), strict=True):
    image = ax.imshow(
      spec,
      origin="lower",
      aspect="auto",
      cmap="magma",
      vmin=top - DYNAMIC_RANGE_DB,
      vmax=top,
      extent=(0, len(signals[name]) / sample_rate, 0, spec.shape[0]),
    )
    ax.set_xlim(0, seconds)
    mel_bin = lambda hz, n=spec.shape[0]: hz_to_mel(hz) / hz_to_mel(sample_rate / 2) * (n + 1) - 1
    ax.set_yticks([mel_bin(hz) for hz in ticks], [f"{hz / 1000:g}k" if hz >= 1000 else str(hz) for hz in ticks])
    ax.set_ylabel("Hz")
    ax.set_title(name, loc="left", fontsize=10)
  axes[-1, 0].set_xlabel("seconds")
  fig.colorbar(image, ax=axes[:, 0].tolist(), label="dB", pad=0.01)
  return fig


def save_spectrogram_png(
  path: str | os.PathLike, signals: dict[str, np.ndarray] | np.ndarray, sample_rate: int = 16000
) -> None:
  """Draw log-mel spectrograms (one panel per named signal) to a PNG file."""
  if isinstance(signals, np.ndarray):
    signals = {Path(path).stem: signals}
  atomic_save_figure(path, spectrogram_figure(signals, sample_rate))
