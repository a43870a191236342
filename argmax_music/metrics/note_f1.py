"""Note-level precision, recall and F1 (mir_eval's transcription metrics) and score notes from MIDI."""

from __future__ import annotations

import os

import numpy as np

from argmax_music import metrics

ONSET_TOLERANCE = 0.05  # seconds, mir_eval's (and MIREX's) default


def midi_notes(path: str | os.PathLike, start: float = 0.0, seconds: float | None = None) -> np.ndarray:
  """Notes of a MIDI file as [onset, offset, pitch] rows, in seconds from `start` (MIDI time).

  With `seconds`, only notes starting inside [start, start + seconds) are kept and their offsets are cut at
  the window's end, as a transcription of that window would see them. Drum tracks are left out.
  """
  metrics.require()
  import pretty_midi

  midi = pretty_midi.PrettyMIDI(os.fspath(path))
  notes = np.array(
    [[n.start, n.end, n.pitch] for inst in midi.instruments if not inst.is_drum for n in inst.notes], np.float64
  ).reshape(-1, 3)
  notes[:, :2] -= start
  if seconds is not None:
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < seconds)]
    notes[:, 1] = np.minimum(notes[:, 1], seconds)
  return notes[np.argsort(notes[:, 0], kind="stable")]


def note_scores(reference: np.ndarray, estimate: np.ndarray) -> dict:
  """Precision/recall/F1 of `estimate` against `reference` (both [onset, offset, pitch] rows).

  `onset_*`: a note matches when its pitch is within 50 cents and its onset within 50 ms;
  `offset_*`: also its offset within 50 ms or 20% of the reference note's length (mir_eval's rules).
  """
  metrics.require()
  from mir_eval import transcription
  from pretty_midi import note_number_to_hz

  scores = {"reference_notes": len(reference), "estimated_notes": len(estimate)}
  for name, offset_ratio in (("onset", None), ("offset", 0.2)):
    if len(reference) and len(estimate):
      precision, recall, f1, _ = transcription.precision_recall_f1_overlap(
        _intervals(reference),
        note_number_to_hz(reference[:, 2]),
        _intervals(estimate),
        note_number_to_hz(estimate[:, 2]),
        onset_tolerance=ONSET_TOLERANCE,
        offset_ratio=offset_ratio,
      )
    else:  # mir_eval warns and returns zeros; an empty side scores 0 (both empty: nothing to find, nothing found).
      precision = recall = f1 = float(not len(reference) and not len(estimate))
    scores.update({f"{name}_precision": float(precision), f"{name}_recall": float(recall), f"{name}_f1": float(f1)})
  return scores


def _intervals(notes: np.ndarray) -> np.ndarray:
  """[onset, offset] rows with offsets strictly after onsets (mir_eval rejects zero-length notes)."""
  return np.stack([notes[:, 0], np.maximum(notes[:, 1], notes[:, 0] + 1e-3)], axis=1)
