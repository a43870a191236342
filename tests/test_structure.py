"""The structure figure: the first and last seconds of a piece in one key correlate; a key change or noise does not."""

import numpy as np
import pytest

from argmax_music.metrics import structure

PROGRESSION = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))  # I IV V I, as triads above the key's tonic


def chords(key: int, start: float, end: float) -> list:
  """The key's I-IV-V-I triads, half a second each, from `start` to `end`: [onset, offset, pitch] rows."""
  times = np.arange(start, end, 0.5)
  return [[t, t + 0.5, 60 + key + p] for i, t in enumerate(times) for p in PROGRESSION[i % len(PROGRESSION)]]


def noise(seed: int) -> np.ndarray:
  """Twenty seconds of random pitches, 20 a second: what a transcriber hears in hiss."""
  rng = np.random.default_rng(seed)
  return np.array([[t, t + 0.05, rng.integers(21, 109)] for t in np.arange(0.0, 20.0, 0.05)])


def test_structure_figure():
  one_key = np.array(chords(0, 0.0, 20.0))
  modulating = np.array(chords(0, 0.0, 10.0) + chords(7, 10.0, 20.0))  # C major, then its dominant, G major
  same = structure.ends_correlation(one_key, one_key, 20.0)
  changed = structure.ends_correlation(modulating, modulating, 20.0)
  noisy = [structure.ends_correlation(n, n, 20.0) for n in map(noise, range(8))]
  assert same > 0.9 and 0.2 < changed < 0.8  # The ends hold different chords of the progression: not exactly 1.
  assert max(noisy) < changed and abs(np.mean(noisy)) < 0.2
  assert np.isnan(structure.ends_correlation(np.zeros((0, 3)), one_key, 20.0))  # silence has no key
  with pytest.raises(ValueError, match="no separate first and last"):
    structure.ends_correlation(one_key, one_key, 8.0)


def test_pitch_class_profile_counts_seconds_inside_the_window():
  notes = np.array([[0.0, 2.0, 60], [1.0, 3.0, 72], [4.0, 5.0, 61]])
  np.testing.assert_allclose(structure.pitch_class_profile(notes, 1.0, 4.5)[:2], [1.0 + 2.0, 0.5])
