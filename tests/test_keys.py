import numpy as np
import pytest

from argmax_music.metrics import keys


def scale_weights(tonic: int, steps) -> np.ndarray:
  weights = np.zeros(12)
  weights[(tonic + np.asarray(steps)) % 12] = 1.0
  weights[tonic] += 1.0  # The tonic heard most, as in a piece.
  return weights


MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11]
HARMONIC_MINOR = [0, 2, 3, 5, 7, 8, 11]


@pytest.mark.parametrize("tonic", range(12))
def test_scales_are_found_in_their_key(tonic):
  assert keys.key_of(scale_weights(tonic, MAJOR_SCALE)) == f"{keys.PITCH_CLASSES[tonic]} major"
  assert keys.key_of(scale_weights(tonic, HARMONIC_MINOR)) == f"{keys.PITCH_CLASSES[tonic]} minor"


def test_no_notes_or_every_class_alike_has_no_key_and_bad_input_is_refused():
  assert keys.key_of(np.zeros(12)) is None
  assert keys.key_of(np.ones(12)) is None
  with pytest.raises(ValueError, match="12 pitch-class weights"):
    keys.key_of(np.ones(7))
  with pytest.raises(ValueError, match="unknown key 'H major'"):
    keys.key_index("H major")
  assert [keys.KEYS[keys.key_index(k)] for k in keys.KEYS] == list(keys.KEYS) and len(keys.KEYS) == 24


def test_relative_keys_share_their_pitch_classes():
  assert keys.relative("C major") == "A minor" and keys.relative("A minor") == "C major"
  assert keys.relative("Eb major") == "C minor" and keys.relative("F# minor") == "A major"
  for name in keys.KEYS:
    assert keys.relative(keys.relative(name)) == name
    tonic = keys.PITCH_CLASSES.index(name.split()[0])
    scale = MAJOR_SCALE if name.endswith("major") else [0, 2, 3, 5, 7, 8, 10]  # Natural minor: the same notes.
    other = keys.relative(name)
    other_tonic = keys.PITCH_CLASSES.index(other.split()[0])
    other_scale = MAJOR_SCALE if other.endswith("major") else [0, 2, 3, 5, 7, 8, 10]
    assert {(tonic + i) % 12 for i in scale} == {(other_tonic + i) % 12 for i in other_scale}


def test_key_agreement_counts_the_key_and_its_relative():
  from argmax_music.metrics import figures

  rows = [
    {"key": "G minor", "asked_key": "G minor"},
    {"key": "Bb major", "asked_key": "G minor"},
    {"key": "D major", "asked_key": "G minor"},
    {"key": None, "asked_key": "C major"},
  ]
  assert figures.key_agreement(rows) == {"key_agreement": 0.25, "signature_agreement": 0.5}


def scale_notes(tonic: int, steps) -> np.ndarray:
  """[onset, offset, pitch] rows: one note on each step of a scale above `tonic` (middle C's octave)."""
  return np.array([[i, i + 0.5, 60 + tonic + s] for i, s in enumerate(steps)], np.float64)


def test_scale_degrees_count_notes_from_the_tonic_and_go_back_onto_a_key():
  c_major, g_major = scale_weights(0, MAJOR_SCALE), scale_weights(7, MAJOR_SCALE)
  degrees = keys.scale_degree_counts([(c_major, "C major"), (g_major, "G major"), (c_major, "A minor")])
  np.testing.assert_array_equal(degrees["major"], 2 * c_major)  # Both scales, counted from their tonics.
  np.testing.assert_array_equal(degrees["minor"], np.roll(c_major, -9))  # A's notes first.
  np.testing.assert_array_equal(keys.in_key(c_major, "G major"), g_major)
  with pytest.raises(ValueError, match="unknown key"):
    keys.scale_degree_counts([(c_major, "H major")])


def test_scale_degree_figures_tell_the_keys_drawn_from_how_each_piece_uses_its_scale():
  from argmax_music.metrics import figures, pitch_stats

  major = scale_weights(0, MAJOR_SCALE) / 8  # The training files' use of a major scale, tonic first.
  training = figures.TrainingReference(
    major, np.ones(6) / 6, -24.0, -2.5, "made up", 8.0, 0.0, 0.8, 0.3, 0.05, {"major": major}
  )
  c_scale, g_scale = scale_notes(0, [0, *MAJOR_SCALE]), scale_notes(7, [0, *MAJOR_SCALE])
  # Each piece plays its scale as the training files do: no distance in the key, whichever key it is in.
  fit = figures.scale_degree_figures([c_scale, g_scale], ["C major", "G major"], training)
  assert fit["scale_degree_distance"] == pytest.approx(0.0)
  # The keys alone move the pooled notes from C major's: half the notes sit in G major.
  g_major = pitch_stats.pitch_class_histogram(g_scale)
  assert fit["key_mix_distance"] == pytest.approx(pitch_stats.histogram_distance(major + g_major, 2 * major))
  # A piece asked for G major that plays C major: it dwells on C rather than G (1/8 of its notes) and plays F, a flat
  # seventh of G that the training files never play, in place of F# (1/8).
  wrong = figures.scale_degree_figures([c_scale], ["G major"], training)
  assert wrong["scale_degree_distance"] == pytest.approx(0.25)
  assert wrong["key_mix_distance"] == pytest.approx(pitch_stats.histogram_distance(g_major, major))
  unknown_mode = figures.scale_degree_figures([c_scale], ["A minor"], training)
  assert np.isnan(unknown_mode["scale_degree_distance"]) and np.isnan(unknown_mode["key_mix_distance"])
