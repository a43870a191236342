"""The score of a clip: the notes its corpus or MAESTRO folder's MIDI says are played in it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from argmax_music import metrics
from argmax_music.data import corpus, dataset
from argmax_music.data.clips import Clip, pick_clips
from argmax_music.metrics import note_f1


def midi_index(data: dataset.PreparedDataset, midi_root: str | os.PathLike | None = None) -> dict:
  """{source: (MIDI path, MIDI time of the audio's start)} for a prepared dataset made from a folder with MIDI
  (the embedded corpus, MAESTRO); `midi_root` overrides the folder the manifest records."""
  root = midi_root or data.manifest["made_by"].get("input")
  return corpus.midi_for_audio(root) if root and Path(root).is_dir() else {}


def clip_score(midi: dict, clip: Clip, seconds: float) -> np.ndarray | None:
  """The score's notes ([onset, offset, pitch] rows, clip time) starting inside the clip's `seconds`, or None
  when its file has no MIDI. `midi`: a `midi_index`."""
  found = midi.get(os.path.normpath(clip.source))
  return None if found is None else note_f1.midi_notes(found[0], found[1] + clip.start_s, seconds)


def file_score(path: str | os.PathLike, seconds: float) -> np.ndarray | None:
  """The score's notes in the first `seconds` of an audio file of a corpus or MAESTRO folder (whose CSV,
  one or two folders up, names the file's MIDI), or None when it has no MIDI."""
  path = Path(path).resolve()
  for root in path.parents[:2]:
    found = corpus.midi_for_audio(root).get(os.path.normpath(path.relative_to(root)))
    if found:
      return note_f1.midi_notes(found[0], found[1], seconds)
  return None


def scored_clips(
  data: dataset.PreparedDataset, count: int, length: int, multiple: int = 1
) -> list[tuple[Clip, np.ndarray]]:
  """Validation clips (`clips.pick_clips`) with their score's notes, those whose file has MIDI; [] when the data has
  none or the evaluation dependencies are missing."""
  midi = {} if metrics.missing_dependencies() else midi_index(data)
  if not midi:
    return []
  picked = pick_clips(data, "validation", count, length, multiple)
  return [(c, clip_score(midi, c, length / data.rate)) for c in picked if os.path.normpath(c.source) in midi]
