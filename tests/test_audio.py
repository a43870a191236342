import numpy as np
import pytest
import soundfile as sf

from argmax_music import audio


def test_mu_law_round_trip_and_edges():
  q = np.arange(256)
  assert np.array_equal(audio.mu_law_encode(audio.mu_law_decode(q)), q)
  assert audio.mu_law_encode(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
  assert audio.mu_law_encode(np.array([-7.0, 7.0])).tolist() == [0, 255]  # clipped beyond +-1
  x = np.linspace(-1, 1, 10001)
  assert np.max(np.abs(audio.mu_law_decode(audio.mu_law_encode(x)) - x)) < 0.035  # coarse only near +-1
  small = np.linspace(-0.01, 0.01, 101)
  assert np.max(np.abs(audio.mu_law_decode(audio.mu_law_encode(small)) - small)) < 3e-4  # fine near 0
  assert np.allclose(audio.mu_law_expand(audio.mu_law_compress(x)), x, atol=1e-12)
  assert audio.mu_law_encode(x).dtype == np.uint8


def test_load_downmixes_and_resamples(tmp_path):
  rate = 44100
  t = np.arange(rate) / rate
  left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t) * 0.5
  sf.write(tmp_path / "stereo.flac", np.stack([left, right], 1) * 0.5, rate)
  x = audio.load_audio(tmp_path / "stereo.flac", 16000)
  assert x.dtype == np.float32 and x.ndim == 1 and abs(len(x) - 16000) <= 1
  spectrum = np.abs(np.fft.rfft(x))
  assert abs(np.argmax(spectrum) * 16000 / len(x) - 440) < 2  # the tone survives resampling
  assert abs(np.max(np.abs(x)) - 0.375) < 0.01  # channels averaged: (0.5 + 0.25) / 2


def test_load_rejects_corrupt_and_empty(tmp_path):
  (tmp_path / "text.wav").write_text("not audio")
  with pytest.raises(audio.AudioError, match="text.wav"):
    audio.load_audio(tmp_path / "text.wav")
  sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
  with pytest.raises(audio.AudioError, match="empty.wav"):
    audio.load_audio(tmp_path / "empty.wav")


def test_save_wav_and_spectrogram(tmp_path):
  x = np.sin(np.arange(16000) * 0.1).astype(np.float32) * 0.5
  audio.save_audio(tmp_path / "a.wav", x)
  y, rate = sf.read(tmp_path / "a.wav")
  assert rate == 16000 and np.max(np.abs(y - x)) < 1e-4
  audio.save_spectrogram_png(tmp_path / "a.png", {"a": x, "b": x * 0.1})
  assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  spec = audio.log_mel_spectrogram(x)
  assert spec.shape[0] == 80 and np.all(np.isfinite(spec))
