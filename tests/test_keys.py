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
