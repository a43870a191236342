"""Information the codes carry about the score: frame labels from notes, plug-in MI against its shuffled bias."""

import numpy as np
import pytest

from argmax_music.metrics.code_information import code_information_bits, frame_pitch_labels, score_information


def test_frame_pitch_labels_are_the_sets_sounding_at_each_centre():
  # Frames of 0.1 s, centres 0.05, 0.15, 0.25, 0.35, 0.45: {60}, {60, 64}, {64}, {}, {60}.
  notes = np.array([[0.0, 0.22, 60], [0.1, 0.3, 64], [0.4, 0.6, 60]])
  labels = frame_pitch_labels(notes, 5, 0.1)
  assert labels.dtype == np.int64 and labels.shape == (5,)
  assert labels[0] == labels[4] and len(set(labels[:4].tolist())) == 4
  # A note from before the clip sounds from frame 0; one ending on a centre does not sound there.
  assert len(set(frame_pitch_labels(np.array([[-1.0, 0.15, 70]]), 3, 0.1).tolist())) == 2
  with pytest.raises(ValueError, match="MIDI pitches"):
    frame_pitch_labels(np.array([[0.0, 1.0, 128]]), 3, 0.1)


def made_up_score(rng, seconds=400.0):
  """A melody of 25 pitches, a third above it now and then, and rests: [onset, offset, pitch] rows."""
  notes, t = [], 0.0
  while t < seconds:
    length = rng.uniform(0.1, 0.6)
    if rng.uniform() > 0.1:
      pitch = rng.integers(48, 73)
      notes.append([t, t + length, pitch])
      if rng.uniform() < 0.3:
        notes.append([t, t + length, pitch + 4])
    t += length
  return np.array(notes)


def test_code_information():
  rng = np.random.default_rng(0)
  frame = 0.02
  notes = made_up_score(rng)
  frames = int(400.0 / frame)
  labels = frame_pitch_labels(notes, frames, frame)
  centres = (np.arange(frames) + 0.5) * frame
  sounding = (notes[:, 0] <= centres[:, None]) & (centres[:, None] < notes[:, 1])  # (frames, notes)
  lowest = np.where(sounding.any(1), np.min(np.where(sounding, notes[:, 2], 999), 1), 0).astype(int)
  copy = rng.permutation(labels.max() + 1)[labels]  # Another number for each set: the same information.
  result = {
    "copy": code_information_bits(copy, labels),
    "lowest pitch": code_information_bits(lowest, labels),  # Misses whether the third sounds.
    "random": code_information_bits(rng.integers(0, 64, frames), labels),
    "constant": code_information_bits(np.zeros(frames, int), labels),
  }
  ceiling = result["copy"]["label_entropy_bits"]
  assert 4.0 < ceiling < 6.0  # 51 sets (25 notes, each alone or with a third, and silence), not uniform
  assert result["copy"]["mutual_information_bits"] == pytest.approx(ceiling, abs=1e-9)
  assert result["copy"]["information_bits"] > 0.97 * ceiling
  assert 0.6 * ceiling < result["lowest pitch"]["information_bits"] < result["copy"]["information_bits"] - 0.3
  # Random codes: the plug-in alone finds ~(64 - 1)(51 - 1) / (2 N ln 2) = 0.11 bits; the shuffled estimate removes it.
  assert result["random"]["mutual_information_bits"] > 0.05
  assert result["random"]["information_bits"] < 0.02
  assert result["constant"]["mutual_information_bits"] == pytest.approx(0.0, abs=1e-9)
  assert result["constant"]["information_bits"] == 0.0
  for r in result.values():
    assert r["label_entropy_bits"] == pytest.approx(ceiling)
    assert r["shuffled_bits"] >= -1e-9
  with pytest.raises(ValueError, match="one label per code"):
    code_information_bits(np.zeros(3), np.zeros(4))


def test_score_information_lays_clips_end_to_end_and_skips_clips_without_a_score():
  rng = np.random.default_rng(1)
  frame = 0.02
  clips = [made_up_score(rng, 40.0) for _ in range(3)]
  codes = []  # Each frame's lowest sounding pitch: the same code means the same thing in every clip.
  for notes in clips:
    centres = (np.arange(2000) + 0.5) * frame
    sounding = (notes[:, 0] <= centres[:, None]) & (centres[:, None] < notes[:, 1])
    codes.append(np.where(sounding.any(1), np.min(np.where(sounding, notes[:, 2], 999), 1), 0).astype(int))
  result = score_information(codes + [codes[0]], clips + [None], frame)
  assert result["clips"] == 3 and result["information_bits"] > 3.0
  assert score_information(codes[:1], [None], frame) == {}
