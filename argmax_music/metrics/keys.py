"""Musical keys: the major or minor key whose Krumhansl-Kessler profile best matches a piece's pitch classes.

The profiles are the ratings of how well each pitch class fits a key context (Krumhansl and Kessler 1982); the key
of a piece is the rotation that correlates best with how often (or how long) each pitch class sounds in it
(Krumhansl's key-finding algorithm). A key-conditioned prior (`prior.condition_on_key`) is trained on the key of
each piece's score and asked for one when it samples.
"""

from __future__ import annotations

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KEYS = tuple(f"{tonic} {mode}" for mode in ("major", "minor") for tonic in PITCH_CLASSES)
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# (24, 12): row i is the profile of KEYS[i], rotated so that its tonic is that key's pitch class.
PROFILES = np.stack([np.roll(profile, tonic) for profile in (MAJOR, MINOR) for tonic in range(12)])


def key_of(pitch_class_weights: np.ndarray) -> str | None:
  """The name (in KEYS) of the key of a piece with these 12 pitch-class weights (C first); None without notes."""
  weights = np.asarray(pitch_class_weights, np.float64)
  if weights.shape != (12,):
    raise ValueError(f"expected 12 pitch-class weights, got shape {weights.shape}")
  if weights.sum() <= 0 or np.ptp(weights) == 0:
    return None
  return KEYS[int(np.argmax([np.corrcoef(weights, p)[0, 1] for p in PROFILES]))]


def relative(name: str) -> str:
  """The relative minor of a major key, the relative major of a minor one: the same pitch classes (key signature),
  which key-finding from pitch classes alone often confuses."""
  tonic, mode = tonic_and_mode(name)
  shift, other = (9, "minor") if mode == "major" else (3, "major")
  return f"{PITCH_CLASSES[(tonic + shift) % 12]} {other}"


def tonic_and_mode(name: str) -> tuple[int, str]:
  """(the tonic's pitch class, C = 0; "major" or "minor") of key `name`; a ValueError for an unknown name."""
  tonic, mode = KEYS[key_index(name)].split()
  return PITCH_CLASSES.index(tonic), mode


def key_index(name: str) -> int:
  """The position of key `name` in KEYS; a ValueError naming the valid names otherwise."""
  if name not in KEYS:
    raise ValueError(f"unknown key {name!r}; expected one of: {', '.join(KEYS)}")
  return KEYS.index(name)


def scale_degree_counts(pieces: list[tuple[np.ndarray, str]]) -> dict[str, np.ndarray]:
  """Per mode ("major", "minor"): the 12 pitch-class counts of the (counts, key) pairs in that mode, each rotated
  so that its key's tonic comes first (entry i: notes i semitones above the tonic), summed."""
  degrees = {}
  for counts, name in pieces:
    tonic, mode = tonic_and_mode(name)
    rotated = np.roll(np.asarray(counts, np.float64), -tonic)
    degrees[mode] = degrees.get(mode, np.zeros(12)) + rotated
  return degrees


def in_key(degree_counts: np.ndarray, name: str) -> np.ndarray:
  """Scale-degree counts (tonic first) of a key's mode placed back on the pitch classes of key `name` (C first)."""
  return np.roll(np.asarray(degree_counts, np.float64), tonic_and_mode(name)[0])
