"""The prepared-dataset format, shared by waveforms (mu-law uint8) and codes (uint16).

A prepared dataset is a folder with `manifest.json` and one `.npy` array per source
file under a folder per split. Arrays are written atomically (temporary name,
then rename) and the manifest is rewritten atomically after each file, so an
interrupted run loses nothing already written and a re-run resumes.

manifest.json:
  kind         "mu_law" (waveform classes) or "codes" (a level's code sequences)
  num_classes  256 for mu-law, K for codes
  dtype        "uint8" or "uint16"
  rate         timesteps per second (16000 for audio, 16000 / hop for codes)
  sample_rate  the audio sample rate the data came from
  splits       {split: [{"source", "array", "length", "sha256"}]}; a validation entry held out
               from the tail of a training file also has "start" (its first timestep in the file)
               and an entry whose file has a score, "key" (its key, a name in `metrics.keys.KEYS`)
  skipped      [{"source", "reason"}]  files that could not be used, each once
  too_short    [{"source", "length"}]  files shorter than the minimum length
  made_by      free-form provenance (prepare's flags, or the checkpoint that made the codes);
               from prepare, "validation" says how the validation split was chosen
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from argmax_music import files

MANIFEST = "manifest.json"
SPLITS = ("train", "validation", "test")


class DatasetError(ValueError):
  """A prepared dataset that is missing or malformed; the message names the path."""


def hash_unit(key: str) -> float:
  """A number in [0, 1) from a hash of `key` (stable across machines and runs)."""
  return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def hash_split(key: str, validation_fraction: float, test_fraction: float) -> str:
  """Deterministic split of an item by a hash of its name (stable across machines and runs)."""
  u = hash_unit(key)
  if u < validation_fraction:
    return "validation"
  if u < validation_fraction + test_fraction:
    return "test"
  return "train"


def file_sha256(path: str | os.PathLike) -> str:
  """SHA-256 of a file's bytes."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def ordered_map(fn, items: list, workers: int):
  """map(fn, items) in `workers` spawned processes (safe beside JAX's threads), or inline for workers <= 1."""
  if workers <= 1 or len(items) <= 1:
    yield from map(fn, items)
    return
  with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
    yield from pool.map(fn, items)


def new_manifest(kind: str, num_classes: int, dtype: str, rate: float, sample_rate: int, made_by: dict) -> dict:
  """An empty manifest."""
  return {
    "kind": kind,
    "num_classes": num_classes,
    "dtype": dtype,
    "rate": rate,
    "sample_rate": sample_rate,
    "splits": {s: [] for s in SPLITS},
    "skipped": [],
    "too_short": [],
    "made_by": made_by,
  }


class DatasetWriter:
  """Writes a prepared dataset in `root` file by file, resuming the one already there (else starting from the
  manifest `fresh`): each array, then the manifest that lists it, is on disk before the next file starts.
  A write that a kill cut short left only a temporary file, which resuming removes."""

  def __init__(self, root: str | os.PathLike, fresh: dict):
    self.root = Path(root)
    self.root.mkdir(parents=True, exist_ok=True)
    files.remove_temporaries(self.root)
    self.path = self.root / MANIFEST
    self.manifest = PreparedDataset(self.root).manifest if self.path.exists() else fresh

  def done(self) -> set[str]:
    """The sources already written, skipped or found too short."""
    entries = [e for s in SPLITS for e in self.manifest["splits"][s]]
    return {e["source"] for e in entries + self.manifest["skipped"] + self.manifest["too_short"]}

  def add(self, split: str, entry: dict, array: np.ndarray) -> None:
    """Save `array` as entry["array"] and list the entry (with its length) in `split`."""
    files.atomic_save_npy(self.root / entry["array"], array)
    self.manifest["splits"][split].append({**entry, "length": len(array)})
    self.save()

  def set_aside(self, kind: str, entry: dict) -> None:
    """List a source that gives no array: `kind` is 'skipped' or 'too_short'."""
    self.manifest[kind].append(entry)
    self.save()

  def save(self) -> None:
    files.atomic_write_json(self.path, self.manifest)


def array_name(split: str, source: str) -> str:
  """The relative .npy path of a source file's array (a hash keeps odd file names out of the tree)."""
  return f"{split}/{hashlib.sha256(source.encode()).hexdigest()[:20]}.npy"


class PreparedDataset:
  """Read access to a prepared dataset; arrays are memory-mapped."""

  def __init__(self, root: str | os.PathLike):
    self.root = Path(root)
    path = self.root / MANIFEST
    if not path.exists():
      raise DatasetError(f"{path}: no manifest; prepare the data first (python -m argmax_music.data.prepare)")
    try:
      self.manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise DatasetError(f"{path}: corrupt manifest ({e})") from e
    self.num_classes = int(self.manifest["num_classes"])
    self.rate = float(self.manifest["rate"])
    self.kind = self.manifest["kind"]

  def entries(self, split: str) -> list[dict]:
    if split not in SPLITS:
      raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    return self.manifest["splits"][split]

  def arrays(self, split: str) -> list[np.ndarray]:
    """The split's arrays, memory-mapped, in manifest order."""
    return [np.load(self.root / e["array"], mmap_mode="r") for e in self.entries(split)]

  def keys(self, split: str) -> list[int]:
    """The index in `metrics.keys.KEYS` of each file's key, in manifest order; an error naming the first file
    without one."""
    from argmax_music.metrics.keys import key_index

    missing = [e["source"] for e in self.entries(split) if "key" not in e]
    if missing:
      raise DatasetError(
        f"{self.root}: {len(missing)} {split} files have no key (the first: {missing[0]}); keys come from the scores "
        "a corpus or MAESTRO folder names: prepare it again into a new --output, then encode"
      )
    return [key_index(e["key"]) for e in self.entries(split)]

  def file_keys(self, split: str) -> dict[str, str]:
    """{source: its score's key} of the split's files that have one."""
    return {e["source"]: e["key"] for e in self.entries(split) if "key" in e}

  def key_shares(self, split: str) -> dict[str, float]:
    """{key: its share of the split's timesteps}, commonest first."""
    from argmax_music.metrics.keys import KEYS

    lengths = np.bincount(self.keys(split), [e["length"] for e in self.entries(split)], len(KEYS))
    order = np.argsort(-lengths, kind="stable")
    return {KEYS[i]: round(float(lengths[i] / lengths.sum()), 4) for i in order if lengths[i]}

  def seconds(self, split: str) -> float:
    return sum(e["length"] for e in self.entries(split)) / self.rate
