"""Turn a folder of audio into a prepared dataset (mu-law uint8 arrays per split + manifest).

  python -m argmax_music.data.prepare --input=DIR --output=DIR [--min_seconds=1]

Splits come from a MAESTRO-style CSV in the input folder (columns `split` and
`audio_filename`) when there is one. A plain folder of at least 10 files is split
by a hash of each file's path (whole files; the file with the lowest hash goes to
validation if the hash picked none). A smaller folder trains on every file and
holds out the tail of each one for validation (--validation_fraction of it, at
least --min_seconds): the training array stops where the tail starts, so no
training crop overlaps it. The summary printed at the end says which was done.
A file whose CSV row names a MIDI file (the embedded corpus, MAESTRO) gets the
key of its score (`corpus.midi_key`) in its manifest entry, for a key-conditioned prior.
Unreadable files are skipped and listed under `skipped` in the manifest; files
shorter than --min_seconds are listed under `too_short`. Every finished file is
on disk before the next starts, so a re-run resumes where the last one stopped.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from absl import flags, logging
from tqdm import tqdm

from argmax_music import audio, files
from argmax_music.data import corpus, dataset

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".opus"}
SILENCE_PEAK = 1e-4
# A plain folder with fewer files validates on held-out tails rather than on whole files.
MIN_FILES_FOR_WHOLE_VALIDATION = 10


def find_audio_files(root: Path) -> list[str]:
  """Audio files under `root` (relative paths, sorted). Symlinked folders are not followed (no loops)."""
  found = []
  for folder, _, names in os.walk(root):
    for name in names:
      if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
        found.append(os.path.relpath(os.path.join(folder, name), root))
  return sorted(found)


def read_split_csv(root: Path) -> dict[str, str]:
  """{audio_filename: split} from a MAESTRO-style CSV at the top of `root`, or {} when there is none."""
  splits = {}
  for path in sorted(root.glob("*.csv")):
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      if not {"split", "audio_filename"} <= set(reader.fieldnames or ()):
        continue
      for row in reader:
        if row["split"] not in dataset.SPLITS:
          raise ValueError(f"{path}: unknown split {row['split']!r} for {row['audio_filename']}")
        splits[os.path.normpath(row["audio_filename"])] = row["split"]
  return splits


def plain_splits(sources: list[str], validation_fraction: float, test_fraction: float) -> dict[str, str]:
  """{source: split} for a folder without a CSV (see the module docstring); small folders all train."""
  if len(sources) < MIN_FILES_FOR_WHOLE_VALIDATION:
    return dict.fromkeys(sources, "train")
  splits = {s: dataset.hash_split(s, validation_fraction, test_fraction) for s in sources}
  if validation_fraction > 0 and "validation" not in splits.values():
    splits[min((s for s in sources if splits[s] == "train"), key=dataset.hash_unit)] = "validation"
  return splits


def hold_out_tails(writer: dataset.DatasetWriter, validation_fraction: float, min_length: int) -> int:
  """Move the tail of each training file into the validation split; returns how many files gave one.

  The head and the tail are written under new names before the manifest switches to them (a
  killed run leaves the old manifest valid); files too short to keep `min_length` on both sides
  stay whole in training.
  """
  out, manifest = writer.root, writer.manifest
  train, validation, replaced = [], [], []
  for entry in manifest["splits"]["train"]:
    tail = max(int(entry["length"] * validation_fraction), min_length)
    cut = entry["length"] - tail
    if cut < min_length:
      train.append(entry)
      continue
    q = np.load(out / entry["array"])
    head_name = dataset.array_name("train", f"{entry['source']}#before-validation-tail")
    tail_name = dataset.array_name("validation", entry["source"])
    files.atomic_save_npy(out / head_name, q[:cut])
    files.atomic_save_npy(out / tail_name, q[cut:])
    train.append({**entry, "array": head_name, "length": cut})
    validation.append({**entry, "array": tail_name, "length": tail, "start": cut})
    replaced.append(out / entry["array"])
  manifest["splits"]["train"], manifest["splits"]["validation"] = train, validation
  writer.save()
  for path in replaced:
    path.unlink(missing_ok=True)
  return len(validation)


def _load(args) -> tuple[str, str, np.ndarray | None, str | None]:
  """Worker: (source, sha256, mu-law array or None, reason it was skipped or None)."""
  root, source, sample_rate = args
  path = root / source
  try:
    digest = dataset.file_sha256(path)
    x = audio.load_audio(path, sample_rate)
  except (audio.AudioError, OSError) as e:
    return source, "", None, str(e) if isinstance(e, audio.AudioError) else f"{path}: {e.strerror or e}"
  if np.max(np.abs(x)) < SILENCE_PEAK:
    return source, digest, None, f"{path}: silent (peak below {SILENCE_PEAK})"
  return source, digest, audio.mu_law_encode(x), None


def prepare(
  input_dir: str | os.PathLike,
  output_dir: str | os.PathLike,
  sample_rate: int = 16000,
  min_seconds: float = 1.0,
  validation_fraction: float = 0.05,
  test_fraction: float = 0.05,
  workers: int = 1,
) -> dict:
  """Prepare `input_dir` into `output_dir` (resuming a previous run there) and return the manifest."""
  root, out = Path(input_dir), Path(output_dir)
  if not root.is_dir():
    raise FileNotFoundError(f"--input={root}: not a folder")
  sources = find_audio_files(root)
  if not sources:
    raise dataset.DatasetError(f"--input={root}: no audio files found (looked for {sorted(AUDIO_EXTENSIONS)})")
  csv_splits = read_split_csv(root)
  midi = corpus.midi_for_audio(root)
  plain = {} if csv_splits else plain_splits(sources, validation_fraction, test_fraction)
  made_by = {
    "tool": "prepare",
    "input": str(root.resolve()),
    "min_seconds": min_seconds,
    "validation_fraction": validation_fraction,
    "test_fraction": test_fraction,
  }
  writer = dataset.DatasetWriter(
    out, dataset.new_manifest("mu_law", audio.MU_LAW_CLASSES, "uint8", sample_rate, sample_rate, made_by)
  )
  manifest = writer.manifest
  if manifest["sample_rate"] != sample_rate:
    raise dataset.DatasetError(
      f"{writer.path}: prepared at {manifest['sample_rate']} Hz, asked for {sample_rate} Hz; use another --output"
    )
  done = writer.done()
  todo = [s for s in sources if s not in done]
  logging.info("%d audio files in %s: %d already prepared, %d to do", len(sources), root, len(done), len(todo))

  min_length = int(min_seconds * sample_rate)
  progress = tqdm(total=len(todo), desc="prepare", unit="files")
  for source, digest, q, reason in dataset.ordered_map(_load, [(root, s, sample_rate) for s in todo], workers):
    if reason is not None:
      logging.warning("skipping %s", reason)
      writer.set_aside("skipped", {"source": source, "reason": reason})
    elif len(q) < min_length:
      writer.set_aside("too_short", {"source": source, "length": len(q)})
    else:
      split = (
        csv_splits.get(os.path.normpath(source))
        or plain.get(source)
        or dataset.hash_split(source, validation_fraction, test_fraction)
      )
      entry = {"source": source, "array": dataset.array_name(split, source), "sha256": digest}
      score = midi.get(os.path.normpath(source))
      key = corpus.midi_key(score[0]) if score else None
      writer.add(split, entry | ({"key": key} if key else {}), q)
    progress.update()
  progress.close()
  how = manifest["made_by"]
  if csv_splits:
    how["validation"] = "the files the CSV puts in 'validation'"
  elif manifest["splits"]["validation"]:
    how.setdefault("validation", "whole files, picked by a hash of each path")
  elif validation_fraction > 0 and hold_out_tails(writer, validation_fraction, min_length):
    how["validation"] = (
      f"the last {validation_fraction:.0%} (at least {min_seconds:g} s) of each training file, "
      f"held out: no training crop reaches it ({len(sources)} files are too few for whole-file "
      f"validation; {MIN_FILES_FOR_WHOLE_VALIDATION} are enough)"
    )
  else:
    how["validation"] = (
      f"none: no file is long enough to hold out {min_seconds:g} s and keep {min_seconds:g} s"
      if validation_fraction > 0
      else "none (--validation_fraction=0)"
    )
  writer.save()
  return manifest


def format_duration(seconds: float) -> str:
  """'12.3 s', '4.5 min' or '2.25 h'."""
  if seconds < 60:
    return f"{seconds:.1f} s"
  return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def summary(manifest: dict) -> str:
  """One line per split with files and duration, how validation was chosen, and the skipped files."""
  rate = manifest["rate"]
  lines = [
    f"  {s:<10} {len(v):5d} files {format_duration(sum(e['length'] for e in v) / rate):>10}"
    for s, v in manifest["splits"].items()
  ]
  if "validation" in manifest["made_by"]:
    lines.append(f"  validation: {manifest['made_by']['validation']}")
  lines.append(f"  skipped {len(manifest['skipped'])} unusable, {len(manifest['too_short'])} too short")
  return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  manifest = prepare(
    FLAGS.input,
    FLAGS.output,
    FLAGS.sample_rate,
    FLAGS.min_seconds,
    FLAGS.validation_fraction,
    FLAGS.test_fraction,
    FLAGS.workers,
  )
  print(f"prepared {FLAGS.output}:\n{summary(manifest)}")


if __name__ == "__main__":
  flags.DEFINE_string("input", None, "Folder of audio files (searched recursively).", required=True)
  flags.DEFINE_string("output", None, "Folder for the prepared dataset.", required=True)
  flags.DEFINE_integer("sample_rate", 16000, "Target sample rate.")
  flags.DEFINE_float("min_seconds", 1.0, "Files shorter than this (one training crop) are skipped.")
  flags.DEFINE_float("validation_fraction", 0.05, "Fraction of files for validation (no CSV).")
  flags.DEFINE_float("test_fraction", 0.05, "Fraction of files for test (no CSV).")
  flags.DEFINE_integer("workers", os.cpu_count(), "Decoding processes.")
  from argmax_music import cli

  cli.run(main)
