"""The grain input pipeline over a prepared dataset.

Training examples are random crops defined by their global index: crop `i` is a
pure function of (seed, i), drawn with files weighted by length. Process `p` of
`P` takes the indices p, p+P, p+2P, ..., so processes see disjoint examples and
a run's data depends only on the seed and the step, whatever the device layout.
The iterator's state (grain's `get_state`) is saved with each checkpoint.
"""

from __future__ import annotations

import grain
import jax
import numpy as np

from argmax_music.data.dataset import DatasetError, PreparedDataset

ENDLESS = 2**62


class RandomCrops:
  """Crop `i` = a random window of `crop` timesteps, from a file chosen with probability ~ its length; with
  `across_files`, anywhere in the files laid end to end in manifest order, so that a crop may run from one file's
  end into the next one's start (as language models pack documents); `trim_end` timesteps at the end of each file
  are left out (a piece's final chord dying away, so that a prior never learns that the music stops). With `keys`
  (one per file), a crop is {"codes": the crop, "keys": the key of the file each timestep is from}."""

  def __init__(
    self,
    arrays: list[np.ndarray],
    crop: int,
    seed: int,
    across_files: bool = False,
    trim_end: int = 0,
    keys: list[int] | None = None,
  ):
    arrays = [a[: max(len(a) - trim_end, 0)] for a in arrays]
    lengths = np.array([len(a) for a in arrays])
    if across_files:
      self.cumulative, self.positions = np.cumsum(lengths), max(int(lengths.sum()) - crop + 1, 0)
    else:
      self.cumulative = np.cumsum(np.maximum(lengths - crop + 1, 0))
      self.positions = int(self.cumulative[-1])
    if self.positions == 0:
      trimmed = f" once its last {trim_end} are left out (data.trim_end_seconds)" if trim_end else ""
      raise DatasetError(f"no file is at least one crop ({crop} timesteps) long{trimmed}")
    self.arrays, self.crop, self.seed, self.keys = arrays, crop, seed, keys

  def locate(self, index: int) -> tuple[int, int]:
    """(file number, start) of crop `index`."""
    rng = np.random.default_rng([self.seed, index])
    position = rng.integers(self.positions)
    file = int(np.searchsorted(self.cumulative, position, side="right"))
    return file, int(position - (self.cumulative[file - 1] if file else 0))

  def __call__(self, index: int) -> np.ndarray | dict:
    file, start = self.locate(index)
    parts, files, missing = [], [], self.crop
    while missing:  # More than one part only across files.
      parts.append(np.asarray(self.arrays[file][start : start + missing]))
      files.append(file)
      missing, file, start = missing - len(parts[-1]), file + 1, 0
    codes = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if self.keys is None:
      return codes
    return {
      "codes": codes,
      "keys": np.concatenate([np.full(len(p), self.keys[f], np.int32) for p, f in zip(parts, files)]),
    }


def train_iterator(
  data: PreparedDataset,
  crop: int,
  global_batch: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
  threads: int = 2,
  prefetch: int = 8,
  across_files: bool = False,
  trim_end: int = 0,
  with_keys: bool = False,
) -> grain.DatasetIterator:
  """An endless, checkpointable iterator of this process's (global_batch / process_count, crop) batches; with
  `with_keys`, of {"codes", "keys"} batches (`RandomCrops`)."""
  if global_batch % process_count:
    raise ValueError(f"batch size {global_batch} is not divisible by the process count {process_count}")
  keys = data.keys("train") if with_keys else None
  crops = RandomCrops(data.arrays("train"), crop, seed, across_files, trim_end, keys)
  ds = (
    grain.MapDataset.range(ENDLESS)[process_index::process_count]
    .map(crops)
    .batch(global_batch // process_count, drop_remainder=True)
  )
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch)))


def batch_sources(
  data: PreparedDataset,
  crop: int,
  global_batch: int,
  seed: int,
  step: int,
  across_files: bool = False,
  trim_end: int = 0,
) -> list[str]:
  """'source@start' of every crop in the global batch of training step `step` (1-based)."""
  crops = RandomCrops(data.arrays("train"), crop, seed, across_files, trim_end)
  entries = data.entries("train")
  located = (crops.locate(i) for i in range((step - 1) * global_batch, step * global_batch))
  return [f"{entries[file]['source']}@{start}" for file, start in located]


def eval_crops(
  data: PreparedDataset, crop: int, split: str = "validation", max_crops: int | None = None, with_keys: bool = False
):
  """Fixed, deterministic crops of a split: consecutive windows of each file, in manifest order; with `with_keys`,
  {"codes", "keys"} crops (`RandomCrops`)."""
  keys = data.keys(split) if with_keys else [0] * len(data.entries(split))
  crops = [
    {"codes": np.asarray(a[start : start + crop]), "keys": np.full(crop, key, np.int32)}
    if with_keys
    else a[start : start + crop]
    for a, key in zip(data.arrays(split), keys)
    for start in range(0, len(a) - crop + 1, crop)
  ]
  return crops[:max_crops] if max_crops else crops


def eval_batches(
  data: PreparedDataset,
  crop: int,
  global_batch: int,
  max_crops: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  split: str = "validation",
  with_keys: bool = False,
):
  """This process's share of each full global batch of `eval_crops` (a list of numpy arrays, or of {"codes",
  "keys"} batches)."""
  if not data.entries(split):
    raise DatasetError(
      f"{data.root}: the {split} split is empty; prepare the folder again into a new "
      f"--output (a plain folder gets a {split} split on its own) or list files for it in a CSV"
    )
  crops = eval_crops(data, crop, split, max_crops, with_keys)
  if len(crops) < global_batch:
    raise DatasetError(
      f"{data.root}: the {split} split has {len(crops)} crops of {crop} timesteps, fewer "
      f"than one batch ({global_batch}); add data or lower eval.batch_size / the crop"
    )
  local = global_batch // process_count
  batches = []
  for b in range(len(crops) // global_batch):
    start = b * global_batch + process_index * local
    batches.append(jax.tree.map(lambda *c: np.stack([np.asarray(x) for x in c]), *crops[start : start + local]))
  return batches
