"""Clips of a prepared dataset for evaluation and listening: the one place that picks them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from argmax_music.data import dataset


@dataclasses.dataclass
class Clip:
  """A clip: its source file, where it starts in that file (seconds), and its samples (mu-law or codes)."""

  source: str
  start_s: float
  waveform: np.ndarray


def pick_clips(data: dataset.PreparedDataset, split: str, count: int, length: int, multiple: int = 1) -> list[Clip]:
  """`count` clips of `length` timesteps (rounded down to `multiple`) from the files of `split` that are that long.

  Clips go round those files in manifest order; a file's clips are spread evenly over it (one clip: its
  middle). Raises ValueError naming the split when no file is long enough.
  """
  length = length // multiple * multiple
  entries = [e for e in data.entries(split) if e["length"] >= length]
  if not entries or length <= 0:
    raise ValueError(f"{data.root}: no {split} file is {length} timesteps long (render or prepare longer files)")
  per_file = math.ceil(count / len(entries))
  clips = []
  for i in range(count):
    entry = entries[i % len(entries)]
    array = np.load(data.root / entry["array"], mmap_mode="r")
    start = int((len(array) - length) * (i // len(entries) + 0.5) / per_file)
    in_file = (entry.get("start", 0) + start) / data.rate  # A validation tail held out of a file starts inside it.
    clips.append(Clip(entry["source"], in_file, np.asarray(array[start : start + length])))
  return clips
