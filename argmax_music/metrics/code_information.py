"""What a level's codes carry about the score: mutual information between codes and the pitches sounding.

Each code frame gets a label, the set of MIDI pitches sounding at its centre (silence is a set too);
the plug-in I(code; label) is then measured in bits per code, next to the same estimate against
time-shuffled labels (the estimator's upward bias at this sample size, since shuffling keeps both
marginals and removes any dependence). Usage and entropy say how many codes are used; this says
how much of the music they name. Numpy only.
"""

from __future__ import annotations

import numpy as np

NUM_PITCHES = 128


def frame_pitch_labels(midi_notes: np.ndarray, num_frames: int, frame_seconds: float) -> np.ndarray:
  """One int64 label per code frame: the set of pitches sounding at the frame's centre, one integer per set.

  midi_notes: [onset_s, offset_s, pitch] rows in the clip's time (`note_f1.midi_notes`); frame i is centred at
  (i + 0.5) * frame_seconds and a note sounds there when onset <= centre < offset. Labels number the distinct
  sets of this call (0, 1, ...), so label several clips with one call over their notes laid end to end.
  """
  notes = np.asarray(midi_notes, np.float64).reshape(-1, 3)
  pitches = notes[:, 2].astype(np.int64)
  if np.any((pitches < 0) | (pitches >= NUM_PITCHES)):
    raise ValueError(f"MIDI pitches must be in [0, {NUM_PITCHES}); got {pitches.min()}..{pitches.max()}")
  centres = (np.arange(num_frames) + 0.5) * frame_seconds
  first = np.searchsorted(centres, notes[:, 0], side="left")  # The first frame whose centre is >= the onset.
  end = np.searchsorted(centres, notes[:, 1], side="left")  # The first frame whose centre is >= the offset.
  changes = np.zeros((num_frames + 1, NUM_PITCHES), np.int32)
  np.add.at(changes, (first, pitches), 1)
  np.add.at(changes, (end, pitches), -1)
  sounding = np.cumsum(changes[:-1], axis=0) > 0  # (frames, 128): notes of a pitch sounding at each centre
  packed = np.ascontiguousarray(np.packbits(sounding, axis=1)).view(np.dtype((np.void, NUM_PITCHES // 8)))
  return np.unique(packed.reshape(-1), return_inverse=True)[1].reshape(-1).astype(np.int64)


def _entropy_bits(ids: np.ndarray) -> float:
  """Plug-in entropy (bits) of the empirical distribution of the values in `ids`."""
  counts = np.unique(ids, return_counts=True)[1].astype(np.float64)
  p = counts / counts.sum()
  return float(0.0 - np.sum(p * np.log2(p)))


def _mutual_information_bits(codes: np.ndarray, labels: np.ndarray, num_labels: int, code_bits: float) -> float:
  """Plug-in I(code; label) = H(code) + H(label) - H(code, label), from dense ids."""
  return code_bits + _entropy_bits(labels) - _entropy_bits(codes * num_labels + labels)


def code_information_bits(codes: np.ndarray, labels: np.ndarray, shuffles: int = 8, seed: int = 0) -> dict:
  """Bits per code that `codes` carry about `labels` (same shape, e.g. `frame_pitch_labels`' of the same frames).

  mutual_information_bits: the plug-in I(code; label); shuffled_bits: its mean over `shuffles` random time
  permutations of the labels (the plug-in's bias here); information_bits: max(0, MI - shuffled);
  label_entropy_bits: H(label), the most the codes could carry; code_entropy_bits: H(code).
  """
  codes, labels = np.asarray(codes).reshape(-1), np.asarray(labels).reshape(-1)
  if codes.shape != labels.shape:
    raise ValueError(f"{codes.size} codes for {labels.size} labels: expected one label per code")
  if not codes.size:
    raise ValueError("no codes to measure")
  codes = np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.int64)
  labels = np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)
  num_labels = int(labels.max()) + 1
  code_bits = _entropy_bits(codes)
  mi = _mutual_information_bits(codes, labels, num_labels, code_bits)
  rng = np.random.default_rng(seed)
  null = [_mutual_information_bits(codes, rng.permutation(labels), num_labels, code_bits) for _ in range(shuffles)]
  shuffled = float(np.mean(null)) if null else 0.0
  return {
    "mutual_information_bits": mi,
    "shuffled_bits": shuffled,
    "information_bits": max(0.0, mi - shuffled),
    "label_entropy_bits": _entropy_bits(labels),
    "code_entropy_bits": code_bits,
  }


def score_information(codes: list[np.ndarray], notes: list[np.ndarray | None], frame_seconds: float) -> dict:
  """`code_information_bits` of clips' codes against their scores, the clips laid end to end; clips whose score
  is None are left out, and with none left the result is {}. codes[i]: clip i's codes, one per `frame_seconds`."""
  kept = [(c, n) for c, n in zip(codes, notes) if n is not None]
  if not kept:
    return {}
  starts = np.cumsum([0] + [len(c) for c, _ in kept])[:-1] * frame_seconds
  laid = np.concatenate([np.asarray(n).reshape(-1, 3) + [s, s, 0] for (_, n), s in zip(kept, starts)])
  flat = np.concatenate([c for c, _ in kept])
  return code_information_bits(flat, frame_pitch_labels(laid, len(flat), frame_seconds)) | {"clips": len(kept)}
