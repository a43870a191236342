"""An optional source: export a TFDS audio dataset to a folder that `prepare` reads.

  pip install .[tfds]
  python -m argmax_music.data.tfds_source --name=groove/full-16000hz --out=data/groove [--data_dir=...]

Writes each example's audio as FLAC plus a MAESTRO-style `metadata.csv` carrying
the dataset's own train/validation/test splits; then run
`python -m argmax_music.data.prepare --input=data/groove --output=...`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from absl import flags
from tqdm import tqdm

from argmax_music import audio
from argmax_music.files import atomic_write_csv

SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation", "test": "test"}


def export_tfds(name: str, out: str | os.PathLike, data_dir: str | None = None, audio_key: str = "audio") -> int:
  """Write every example of the TFDS dataset `name` to `out`; returns the number of files written."""
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("the TFDS source needs the extra: pip install '.[tfds]'") from e
  builder = tfds.builder(name, data_dir=data_dir)
  builder.download_and_prepare()
  feature = builder.info.features[audio_key]
  rate = int(getattr(feature, "sample_rate", 0) or 0)
  if not rate:
    raise ValueError(f"{name}: feature {audio_key!r} declares no sample_rate")
  out = Path(out)
  (out / "audio").mkdir(parents=True, exist_ok=True)
  rows = []
  for tfds_split, info in builder.info.splits.items():
    split = SPLIT_NAMES.get(tfds_split.split("[")[0])
    if split is None:
      continue
    progress = tqdm(total=info.num_examples, desc=f"export {tfds_split}", unit="files")
    for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=tfds_split))):
      x = np.asarray(example[audio_key])
      if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
      filename = f"audio/{tfds_split}_{i:06d}.flac"
      path = out / filename
      if not path.exists():
        audio.save_audio(path, x, rate)
      rows.append([split, filename, f"{x.shape[0] / rate:.3f}"])
      progress.update()
    progress.close()
  atomic_write_csv(out / "metadata.csv", ["split", "audio_filename", "duration"], rows)
  return len(rows)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  n = export_tfds(FLAGS.name, FLAGS.out, FLAGS.data_dir, FLAGS.audio_key)
  print(f"wrote {n} files to {FLAGS.out}; next: python -m argmax_music.data.prepare --input={FLAGS.out} ...")


if __name__ == "__main__":
  flags.DEFINE_string("name", "groove/full-16000hz", "TFDS dataset name (with config).")
  flags.DEFINE_string("out", None, "Folder to write audio + metadata.csv into.", required=True)
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (where the dataset is, or is built).")
  flags.DEFINE_string("audio_key", "audio", "The audio feature's key.")
  from argmax_music import cli

  cli.run(main)
