"""Encode a prepared dataset into a trained level's codes, stored as a prepared dataset of its own.

  python -m argmax_music.encode --workdir=runs/level1 --output=runs/level1/codes [--input=DIR]

Every split of the level's training data (or --input) is encoded in windows of
the level's training crop (the encoder's view during training); a file's last
partial window is taken as the final full window, so a file of n timesteps
gives n // hop codes. Arrays are uint16; the manifest records the checkpoint
that made them, and each file keeps its score's key when the input has one.
Finished files are kept and skipped by a re-run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import flags, logging
from tqdm import tqdm

from argmax_music import checkpoints, stack
from argmax_music.data import dataset


def encode_dataset(
  workdir: str | Path, output: str | Path, input_dir: str | Path | None = None, batch: int = 16
) -> dict:
  """Encode every split of the level's data (or `input_dir`) into `output`; returns the manifest."""
  level = stack.Stage.load(workdir)
  config, task = level.config, level.task
  encode_fn = level.encoder
  source = dataset.PreparedDataset(input_dir or config.data.dir)
  hop = task.hop
  crop = min(config.data.crop, max(e["length"] for s in dataset.SPLITS for e in source.entries(s)) // hop * hop)
  made_by = {
    "tool": "encode",
    "workdir": str(Path(workdir).resolve()),
    "run_id": checkpoints.codes_id(level.run),
    "step": int(level.step),
    "input": str(source.root.resolve()),
    "hop": hop,
    "input_rate": source.rate,
  }
  writer = dataset.DatasetWriter(
    output,
    dataset.new_manifest("codes", task.num_codes, "uint16", source.rate / hop, source.manifest["sample_rate"], made_by),
  )
  if writer.manifest["made_by"] != made_by:
    raise ValueError(f"{writer.path} was made by {writer.manifest['made_by']}, not {made_by}; use another --output")
  done = writer.done()
  todo = [(s, e) for s in dataset.SPLITS for e in source.entries(s) if e["source"] not in done]
  for split, entry in tqdm(todo, desc="encode", unit="files"):
    x = np.load(source.root / entry["array"], mmap_mode="r")
    if len(x) < crop:
      writer.set_aside("too_short", {"source": entry["source"], "length": len(x)})
    else:
      codes = stack.encode_array(encode_fn, x, crop, hop, batch)
      writer.add(split, {k: entry[k] for k in ("source", "array", "sha256", "key") if k in entry}, codes)
  logging.info("codes of %s at step %d written to %s", workdir, level.step, output)
  return writer.manifest


FLAGS = flags.FLAGS


def main(argv):
  del argv
  manifest = encode_dataset(FLAGS.workdir, FLAGS.output, FLAGS.input, FLAGS.batch)
  counts = {s: len(v) for s, v in manifest["splits"].items()}
  print(f"encoded {counts} files into {FLAGS.output} ({manifest['num_classes']} codes at {manifest['rate']:g}/s)")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A trained level's workdir.", required=True)
  flags.DEFINE_string("output", None, "Folder for the code dataset.", required=True)
  flags.DEFINE_string("input", None, "Prepared dataset to encode (default: the level's training data).")
  flags.DEFINE_integer("batch", 16, "Windows encoded at once.")
  from argmax_music import cli

  cli.run(main, stack.StackError)
